"""The simulated Dolibarr database: products, third parties, orders (with lines) and users.

Rows are compact and DB-shaped (:mod:`rows`); world rows are built on demand (:mod:`tables`) and
edited in place, so writes, ``mutate`` and reads all see one copy. Every write sets ``tms`` to the
injectable clock's now, which is what ``sqlfilters=(t.tms:>:'...')`` reads, even though the JSON
objects show ``tms: null`` and ``date_modification: ""`` as the recording does.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal

from etl.simulators.miclinik.options import MiclinikOptions
from etl.simulators.miclinik.population import SYSTEM, admin_user, product_row, staff_users
from etl.simulators.miclinik.rows import OrderRow, ProductRow, ThirdpartyRow, UserRow
from etl.simulators.miclinik.tables import CustomerRows, OrderTable, ThirdpartyTable
from etl.simulators.world import WORLD_LOADED_AT, TruthRow, World


class Store:
    """All tables of one simulated installation, plus the counters Dolibarr keeps."""

    def __init__(self, world: World | None, options: MiclinikOptions) -> None:
        self.world = world
        self.options = options
        # A world-backed store renders the same records on every start; an empty one (fixture
        # replay) starts at the injected clock, as a fresh install does.
        self.loaded_at = int(WORLD_LOADED_AT.timestamp()) if world is not None else self.now()
        self.products: dict[int, ProductRow] = {}
        if world is not None:
            for product in world.products():
                self.products[product.id] = product_row(world, product, options, self.loaded_at)
        self._refs = {row.ref.lower(): row.rowid for row in self.products.values()}
        self.customers = CustomerRows(world, self.loaded_at, lambda: self.products)
        self.thirdparties = ThirdpartyTable(self.customers)
        self.orders = OrderTable(self.customers)
        self.users: dict[int, UserRow] = {1: admin_user(options, self.loaded_at)}
        if world is not None:
            self.users |= {user.rowid: user for user in staff_users(world, options, self.loaded_at)}
        self.next_line_id = (world.scale + 1) * 16 if world else 1
        self.next_order_number = self.orders.first_free_id
        self.created = {"product": 0, "customer": 0, "order": 0}
        self.version = 0

    def now(self) -> int:
        """The server clock, in whole Unix seconds as MariaDB stores them."""
        return int(self.options.clock())

    def touch(self, row: ProductRow | ThirdpartyRow | OrderRow | UserRow) -> None:
        """Record a write: ``tms`` moves to now and cached orderings are stale."""
        row.tms = self.now()
        self.version += 1

    def next_true_id(self, entity: str) -> int:
        """A negative id for a record the world does not know (created through the API)."""
        self.created[entity] += 1
        return -self.created[entity]

    # -- products --------------------------------------------------------------
    def product(self, rowid: int) -> ProductRow | None:
        """A product by rowid."""
        return self.products.get(rowid)

    def product_by_ref(self, ref: str) -> ProductRow | None:
        """A product by ref, compared case-insensitively as the collation does."""
        rowid = self._refs.get(ref.lower())
        return None if rowid is None else self.products.get(rowid)

    def add_product(self, row: ProductRow) -> None:
        """Insert a new product (the caller checked the ref is free)."""
        self.products[row.rowid] = row
        self._refs[row.ref.lower()] = row.rowid
        self.version += 1

    def rename_product(self, row: ProductRow, ref: str) -> None:
        """Change a product's ref, keeping the ref index right."""
        self._refs.pop(row.ref.lower(), None)
        row.ref = ref
        self._refs[ref.lower()] = row.rowid

    def next_product_id(self) -> int:
        """Auto-increment of ``llx_product``."""
        return max(self.products, default=0) + 1

    # -- third parties and orders ---------------------------------------------------
    def add_thirdparty(self, row: ThirdpartyRow) -> None:
        """Insert a new third party (rowid ``len(thirdparties) + 1``)."""
        self.thirdparties.add(row)
        self.version += 1

    def add_order(self, row: OrderRow) -> None:
        """Insert a new order."""
        self.orders.add(row)
        self.version += 1

    def delete_product(self, rowid: int) -> None:
        """Delete a product (the caller checked no order line uses it)."""
        row = self.products.pop(rowid)
        self._refs.pop(row.ref.lower(), None)
        self.version += 1

    def product_in_orders(self, rowid: int) -> bool:
        """Whether any order line refers to the product (the foreign key a delete trips on)."""
        return any(line.fk_product == rowid for order in self.orders.all() for line in order.lines)

    def edit_product_label(self, rowid: int, label: str) -> None:
        """A user renames a product in the web UI: its ``tms`` moves, the orders embedding it do not
        (their JSON still changes: lines carry ``product_label``), protocols.md §1.9."""
        row = self.products[rowid]
        row.label = label
        self.touch(row)

    def edit_line_description(self, order_id: int, line_id: int, description: str) -> None:
        """A user edits a line's description (totals unchanged): ``llx_commande.tms`` stays, since the
        order row's UPDATE writes the same totals and MariaDB moves a TIMESTAMP only on a change."""
        order = self.orders.get(order_id)
        line = next((line for line in order.lines if line.rowid == line_id), None) if order else None
        if line is None:
            raise KeyError(f"order {order_id} has no line {line_id}")
        line.description = description
        self.version += 1

    def delete_order(self, order_id: int) -> None:
        """Delete an order and its lines."""
        self.orders.delete(order_id)
        self.version += 1

    def next_order_id(self) -> int:
        """Auto-increment of ``llx_commande`` (above every world order id)."""
        self.orders.first_free_id += 1
        return self.orders.first_free_id - 1

    # -- users -----------------------------------------------------------------
    def user_by_key(self, key: str) -> UserRow | None:
        """The active user owning an API key."""
        for user in self.users.values():
            if user.api_key is not None and user.api_key == key and user.statut == 1:
                return user
        return None

    # -- the simulator contract ----------------------------------------------------
    def mutate(self, fraction: float, seed: int) -> int:
        """Edit ``fraction`` of the products and third parties as a user would; return how many changed."""
        r = random.Random(seed)
        product_ids = list(self.products)
        total = len(product_ids) + len(self.thirdparties)
        picks = r.sample(range(total), min(total, round(total * fraction)))
        for pick in picks:
            if pick < len(product_ids):
                _edit_product(self.products[product_ids[pick]], r)
                self.touch(self.products[product_ids[pick]])
            else:
                row = self.thirdparties.get(pick - len(product_ids) + 1)
                assert row is not None
                _edit_thirdparty(row, r)
                self.touch(row)
        return len(picks)

    def truth(self) -> Iterator[TruthRow]:
        """Every record served now, with the world id behind it (negative: created through the API)."""
        for product in self.products.values():
            yield TruthRow(SYSTEM, "product", str(product.rowid), product.true_id)
        for thirdparty in self.thirdparties.all():
            yield TruthRow(SYSTEM, "customer", str(thirdparty.rowid), thirdparty.true_id)
        for order in self.orders.all():
            yield TruthRow(SYSTEM, "order", str(order.rowid), order.true_id)
        for user in self.users.values():
            yield TruthRow(SYSTEM, "user", str(user.rowid), user.true_id)


def _edit_product(row: ProductRow, r: random.Random) -> None:
    """A price increase, or a label touched up."""
    if r.random() < 0.6:
        row.price = (row.price * Decimal(r.choice(("1.05", "1.10", "0.95", "1.20")))).quantize(Decimal("0.01"))
    elif row.label.endswith(" (new)"):
        row.label = row.label.removesuffix(" (new)")
    else:
        row.label = f"{row.label} (new)"


def _edit_thirdparty(row: ThirdpartyRow, r: random.Random) -> None:
    """An e-mail corrected, a phone number retyped, or a name tidied."""
    roll = r.random()
    if roll < 0.4 and row.email:
        local, _, domain = row.email.strip().lower().partition("@")
        row.email = f"{local}@{'billing.' + domain if not domain.startswith('billing.') else domain[8:]}"
    elif roll < 0.7:
        row.phone = f"+45 {r.randrange(20_000_000, 99_999_999)}"
    else:
        row.nom = " ".join(row.nom.split()).title() if row.nom != row.nom.title() else row.nom.upper()
