"""How the world's truth becomes rows of the simulated Dolibarr database.

Source ids (rowids), per entity:

- product: ``rowid = world product id`` (1..product_count); ``fk_product_type`` 1 (service) for
  tariffs and services, 0 for physical products. Products created through the API get the next
  rowids after the largest one.
- thirdparty (entity "customer"): ``rowid = 1 + position of the customer in
  world.members("miclinik")`` (ascending customer ids), spelled with ``noise.spell(..., "miclinik")``;
  ``code_client`` is ``CU<yymm of creation>-<rowid, 5 digits>``.
- order: ``rowid = world order id`` (``customer_id * 4 + n``), ``fk_soc`` the customer's thirdparty
  rowid; a draft's ref is ``(PROV<rowid>)``, a validated or closed order's ``SO<yymm>-<rowid, 4 digits>``.
  Lines: ``rowid = order id * 4 + position``. Created orders and lines count on from above every
  world id.
- user: rowid 1 is the admin (as in the recording); 2.. are a few seeded staff members (not world
  entities). The first staff member owns the read-only API key.

Records created through the API carry a negative ``true_id`` (no world entity behind them).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

from etl.simulators import names, noise
from etl.simulators.miclinik.options import MiclinikOptions
from etl.simulators.miclinik.rows import LineRow, OrderRow, ProductRow, ThirdpartyRow, UserRow
from etl.simulators.world import Customer, Order, Product, World, rng_for

SYSTEM = "miclinik"
# llx_c_country rowids of the countries the world's customers live in.
COUNTRY_IDS = {"FR": 1, "BE": 2, "IT": 3, "ES": 4, "DE": 5, "CH": 6, "GB": 7, "RU": 19, "DK": 80}
# Third-party "client" values: 1 customer, 3 customer and prospect, 2 prospect, 0 neither. [guess] shares
CLIENT_WEIGHTS = ((1, 0.8), (3, 0.12), (2, 0.05), (0, 0.03))
STAFF_JOBS = ("Accountant", "Support agent", "Sales", "Field technician", "Billing clerk")
READER_RIGHTS = frozenset({"produit.lire", "societe.lire", "commande.lire", "societe.client.voir"})
# Right 262 ("see all third parties", societe.client.voir) missing: lists show only the user's own
# customers (none), as recorded on Dolibarr 23 (protocols.md §1.9).
RESTRICTED_RIGHTS = frozenset({"produit.lire", "societe.lire", "commande.lire", "user.lire"})
ADMIN_RIGHTS = frozenset({"admin"})


class CatalogueMemo(World):
    """The same world (same seed and scale) remembering its products, which ``orders_of`` reads once per line.

    World entities are pure functions of (seed, index), so this copy yields exactly what the original
    does; at scale 100,000 it makes building a customer's orders about three times cheaper.
    """

    def __init__(self, world: World) -> None:
        super().__init__(seed=world.seed, scale=world.scale)
        self._catalogue: dict[int, Product] = {}

    def product(self, product_id: int) -> Product:
        """Product ``product_id``, built once."""
        product = self._catalogue.get(product_id)
        if product is None:
            product = self._catalogue[product_id] = super().product(product_id)
        return product


def epoch(moment: datetime) -> int:
    """A world datetime as Unix seconds."""
    return int(moment.timestamp())


def draw(seed: int, *parts: object) -> float:
    """A uniform number in [0, 1) owned by ``parts``; a hash is five times cheaper than seeding a Random."""
    digest = hashlib.blake2b(repr((seed, SYSTEM, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def modified_at(seed: int, kind: str, rowid: int, created: int, loaded_at: int) -> int:
    """When a world row was last touched before the simulator started: after creation, not after start."""
    offset = 3600 + int(draw(seed, "tms", kind, rowid) * 90 * 86400)
    return min(created + offset, loaded_at)


def client_kind(seed: int, customer_id: int) -> int:
    """The third party's ``client`` value, drawn with :data:`CLIENT_WEIGHTS`."""
    roll = draw(seed, "client", customer_id)
    for value, weight in CLIENT_WEIGHTS:
        if roll < weight:
            return value
        roll -= weight
    return CLIENT_WEIGHTS[0][0]


def yymm(moment: int) -> str:
    """The ``yymm`` part of Dolibarr's numbering masks."""
    return datetime.fromtimestamp(moment, UTC).strftime("%y%m")


def product_row(world: World, product: Product, options: MiclinikOptions, loaded_at: int) -> ProductRow:
    """A world product as a row of ``llx_product``."""
    r = rng_for(world.seed, SYSTEM, "product", product.id)
    label = product.label
    if options.entity_noise and product.id % 12 in (5, 11):
        # Old web-form input stored entities that the API hands back undecoded (protocols.md §1.8).
        label = f"{label} &amp; installation" if product.id % 12 == 5 else f"Installer&#39;s {label}"
    created = epoch(product.created_at)
    return ProductRow(
        rowid=product.id,
        ref=product.ref,
        label=label,
        fk_product_type=0 if product.kind == "product" else 1,
        price=product.price,
        tva_tx=product.vat_rate,
        datec=created,
        tms=modified_at(world.seed, "product", product.id, created, loaded_at),
        tosell=0 if r.random() < 0.05 else 1,
        tobuy=1 if product.kind == "product" else 0,
        description="" if r.random() < 0.7 else f"{label} ({product.kind})",
        true_id=product.id,
    )


def thirdparty_row(world: World, rowid: int, customer: Customer, loaded_at: int) -> ThirdpartyRow:
    """A world customer, as miclinik spells it, as a row of ``llx_societe``."""
    spelled = noise.spell(world.seed, customer, SYSTEM)
    client = client_kind(world.seed, customer.id)
    created = epoch(customer.created_at)
    return ThirdpartyRow(
        rowid=rowid,
        nom=spelled.company or f"{spelled.first_name} {spelled.last_name}",
        client=client,
        code_client=f"CU{yymm(created)}-{rowid:05d}" if client in (1, 3) else None,
        datec=created,
        tms=modified_at(world.seed, "thirdparty", rowid, created, loaded_at),
        email=spelled.email or None,
        phone=spelled.phone or None,
        address=spelled.street,
        zip=spelled.zip,
        town=spelled.city,
        fk_pays=COUNTRY_IDS.get(spelled.country_code),
        country_code=spelled.country_code,
        tva_intra=spelled.tax_id or "",
        typent_id=0 if spelled.is_company else 8,
        true_id=customer.id,
    )


def order_row(world: World, order: Order, socid: int, products: dict[int, ProductRow], loaded_at: int) -> OrderRow:
    """A world order (with its lines) as rows of ``llx_commande`` and ``llx_commandedet``."""
    created = epoch(order.date)
    validated = order.status >= 1
    valid_at = created + 3600 * (1 + order.id % 47) if validated else None
    lines = []
    for position, line in enumerate(order.lines):
        product = products.get(line.product_id)
        lines.append(
            LineRow(
                rowid=order.id * 4 + position,
                fk_commande=order.id,
                fk_product=line.product_id,
                product_type=product.fk_product_type if product else 1,
                qty=Decimal(line.qty),
                subprice=line.unit_price,
                tva_tx=line.vat_rate,
                rang=position + 1,
            )
        )
    return OrderRow(
        rowid=order.id,
        ref=f"SO{yymm(created)}-{order.id:04d}" if validated else f"(PROV{order.id})",
        fk_soc=socid,
        fk_statut=order.status,
        date_commande=created,
        datec=created,
        tms=modified_at(world.seed, "order", order.id, valid_at or created, loaded_at),
        date_valid=valid_at,
        ref_client=order.reference,
        facture=1 if order.status == 3 else 0,
        fk_user_valid=1 if validated else None,
        lines=lines,
        true_id=order.id,
    )


def admin_user(options: MiclinikOptions, loaded_at: int) -> UserRow:
    """The superadmin of entity 0, as recorded (``lastname`` SuperAdmin, ``admin`` 1)."""
    return UserRow(
        rowid=1,
        login=options.login,
        lastname="SuperAdmin",
        firstname="",
        email="",
        admin=1,
        entity=0,
        datec=loaded_at - 85,
        tms=loaded_at - 85,
        api_key=options.api_key,
        rights=ADMIN_RIGHTS,
        true_id=-1,
    )


def staff_users(world: World, options: MiclinikOptions, loaded_at: int) -> list[UserRow]:
    """A few internal users; the first holds the read-only API key, the second the restricted one."""
    staff = []
    for n in range(options.staff_count):
        rowid = n + 2
        r = rng_for(world.seed, SYSTEM, "staff", n)
        locale = r.choice(("da", "en", "es"))
        first, last = r.choice(names.FIRST[locale]), r.choice(names.LAST[locale])
        login = (names.ascii_slug(first)[:1] + names.ascii_slug(last))[:20]
        reader = n == 0
        staff.append(
            UserRow(
                rowid=rowid,
                login=f"{login}{rowid}",
                lastname=last,
                firstname=first,
                email=f"{login}{rowid}@miclinik.example",
                admin=0,
                entity=1,
                datec=loaded_at - 86400 * (400 - 37 * n),
                tms=loaded_at - 86400 * (30 - n),
                api_key=options.readonly_api_key if reader else options.restricted_api_key if n == 1 else None,
                job=r.choice(STAFF_JOBS),
                gender=r.choice(("man", "woman", "")),
                rights=READER_RIGHTS if reader else RESTRICTED_RIGHTS if n == 1 else frozenset(),
                true_id=-rowid,
            )
        )
    return staff
