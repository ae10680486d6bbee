"""Ground truth for the simulators: one seeded, deterministic population.

Every entity is a pure function of ``(seed, index)``, so any system can render
record ``i`` on demand without the world ever materialising the whole population.
Each system sees the population through a :class:`SystemView` that decides who
is present there, which source id each record gets, and how its fields are
spelled (the noise lives in :mod:`etl.simulators.noise`). The truth mapping
from every source record to its true entity comes from the same views.
"""

from __future__ import annotations

import hashlib
import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache, cached_property

from etl.simulators import names, registry

# The built-in kinds, kept under this name for the code that imported it from here.
SYSTEMS = registry.BUILTIN
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
# When the world's data was last touched before any simulator started: every generated
# creation/modification time lies before it, so two runs of one seed render identical records.
WORLD_LOADED_AT = datetime(2026, 1, 1, tzinfo=UTC)
CENT = Decimal("0.01")


def rng_for(seed: int, *parts: object) -> random.Random:
    """A random stream owned by one entity, independent of generation order."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _unit(seed: int, *parts: object) -> float:
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True, slots=True)
class Customer:
    """A real-world customer (person or company), as the truth knows it."""

    id: int
    locale: str  # da | ru | es | en
    is_company: bool
    first_name: str
    last_name: str
    company: str | None
    email: str
    phone: str  # E.164
    street: str
    zip: str
    city: str
    country_code: str
    tax_id: str | None
    customer_number: str
    created_at: datetime

    @property
    def display_name(self) -> str:
        return self.company or f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class Product:
    """A catalogue item: a tariff, a service or a physical product."""

    id: int
    ref: str
    label: str
    kind: str  # tariff | service | product
    price: Decimal  # net, in currency
    vat_rate: Decimal  # percent
    currency: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Account:
    """An ISP service login of a customer, with its address and tariff."""

    id: int
    customer_id: int
    login: str
    password: str
    ip: str
    mac: str
    product_id: int
    balance: Decimal
    blocked: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: int
    qty: int
    unit_price: Decimal
    vat_rate: Decimal

    @property
    def total_net(self) -> Decimal:
        return (self.unit_price * self.qty).quantize(CENT)


@dataclass(frozen=True, slots=True)
class Order:
    """A customer order with lines; ``status`` follows Dolibarr's 0 draft / 1 validated / 3 closed."""

    id: int
    customer_id: int
    date: datetime
    status: int
    lines: tuple[OrderLine, ...]
    reference: str


@dataclass(frozen=True, slots=True)
class Payment:
    id: int
    customer_id: int
    amount: Decimal
    currency: str
    created_at: datetime
    method: str
    status: int  # BILLmanager codes: 1 new .. 4 credited .. 7 fraud


@dataclass(frozen=True, slots=True)
class TruthRow:
    """One source record and the true entity it renders."""

    system: str
    entity: str
    source_id: str
    true_id: int
    # Served as the system's own tombstone (a Microbizz ``deleted`` flag): the record exists, deleted.
    deleted: bool = False


LOCALES = (("da", 0.3), ("ru", 0.3), ("es", 0.25), ("en", 0.15))


@dataclass
class World:
    """The seeded population; ``scale`` is the number of customers."""

    seed: int = 42
    scale: int = 1000
    # Keyed by (name, presence) too, so a kind re-registered with another share is not served stale.
    _members: dict[tuple[str, float], array] = field(default_factory=dict, repr=False)

    # -- catalogue -------------------------------------------------------
    @cached_property
    def product_count(self) -> int:
        return max(24, min(5000, self.scale // 20))

    def product(self, product_id: int) -> Product:
        """Product ``1..product_count``."""
        r = rng_for(self.seed, "product", product_id)
        kind = ("tariff", "service", "product")[product_id % 3]
        label = names.product_label(r, kind)
        price = Decimal(r.randrange(199, 99_900)) / 100
        return Product(
            id=product_id,
            ref=f"{kind[:3].upper()}-{product_id:05d}",
            label=label,
            kind=kind,
            price=price,
            vat_rate=Decimal(("25", "20", "21")[product_id % 3]),
            currency="EUR",
            created_at=EPOCH + timedelta(days=r.randrange(0, 400)),
        )

    def products(self) -> Iterator[Product]:
        for product_id in range(1, self.product_count + 1):
            yield self.product(product_id)

    # -- customers -------------------------------------------------------
    def customer(self, customer_id: int) -> Customer:
        """Customer ``1..scale``."""
        r = rng_for(self.seed, "customer", customer_id)
        locale = r.choices([code for code, _ in LOCALES], [w for _, w in LOCALES])[0]
        return names.customer(r, customer_id, locale)

    def customers(self) -> Iterator[Customer]:
        for customer_id in range(1, self.scale + 1):
            yield self.customer(customer_id)

    def present_in(self, customer_id: int, system: str) -> bool:
        """Whether ``system`` knows this customer; every customer is in at least one built-in system.

        A registered extra kind draws its members on its own, so registering one never moves a
        customer in or out of a built-in system.
        """
        if system not in registry.BUILTIN:
            return _unit(self.seed, "in", system, customer_id) < registry.get(system).presence
        hits = [_unit(self.seed, "in", s, customer_id) < share for s, share in _builtin_presence()]
        if not any(hits):
            hits[customer_id % len(hits)] = True
        return hits[registry.BUILTIN.index(system)]

    def members(self, system: str) -> array:
        """Ids of the customers present in ``system``, ascending (4 bytes each)."""
        key = (system, registry.get(system).presence)
        if key not in self._members:
            ids = array("l")
            for customer_id in range(1, self.scale + 1):
                if self.present_in(customer_id, system):
                    ids.append(customer_id)
            self._members[key] = ids
        return self._members[key]

    # -- accounts, orders, payments --------------------------------------
    def accounts_of(self, customer: Customer) -> list[Account]:
        """ISP logins: one to three per customer; ids are ``customer_id * 4 + n``."""
        r = rng_for(self.seed, "accounts", customer.id)
        count = 1 + (r.random() < 0.3) + (r.random() < 0.1)
        accounts = []
        for n in range(count):
            account_id = customer.id * 4 + n
            accounts.append(
                Account(
                    id=account_id,
                    customer_id=customer.id,
                    login=f"{names.ascii_slug(customer.last_name)[:12]}{account_id}",
                    password=f"pw{r.randrange(10**8):08d}",
                    ip=_ip_for(account_id),
                    mac=_mac_for(self.seed, account_id),
                    product_id=_tariff_id(r.randrange(self.product_count), self.product_count),
                    balance=Decimal(r.randrange(-5000, 50_000)) / 100,
                    blocked=r.random() < 0.07,
                    created_at=customer.created_at + timedelta(hours=r.randrange(1, 500)),
                )
            )
        return accounts

    def orders_of(self, customer: Customer) -> list[Order]:
        """Zero to three orders, each with one to four lines; ids are ``customer_id * 4 + n``."""
        r = rng_for(self.seed, "orders", customer.id)
        orders = []
        for n in range(r.choice((0, 1, 1, 2, 3))):
            lines = []
            for _ in range(r.randint(1, 4)):
                product = self.product(r.randint(1, self.product_count))
                lines.append(OrderLine(product.id, r.randint(1, 5), product.price, product.vat_rate))
            order_id = customer.id * 4 + n
            orders.append(
                Order(
                    id=order_id,
                    customer_id=customer.id,
                    date=customer.created_at + timedelta(days=r.randrange(1, 600)),
                    status=r.choice((0, 1, 1, 1, 3)),
                    lines=tuple(lines),
                    reference=f"PO-{order_id}",
                )
            )
        return orders

    def payments_of(self, customer: Customer) -> list[Payment]:
        r = rng_for(self.seed, "payments", customer.id)
        payments = []
        for n in range(r.choice((0, 1, 2, 3))):
            payments.append(
                Payment(
                    id=customer.id * 4 + n,
                    customer_id=customer.id,
                    amount=Decimal(r.randrange(500, 20_000)) / 100,
                    currency="EUR",
                    created_at=customer.created_at + timedelta(days=r.randrange(1, 700)),
                    method=r.choice(("card", "bank", "cash")),
                    status=r.choice((1, 2, 4, 4, 4, 4, 6)),
                )
            )
        return payments


@cache
def _builtin_presence() -> tuple[tuple[str, float], ...]:
    """(name, presence) of each built-in kind; built-ins cannot be replaced, so this never goes stale."""
    # Overlaps are independent draws, so most customers live in two or more systems, as in an ISP's estate.
    return tuple((name, registry.get(name).presence) for name in registry.BUILTIN)


def _tariff_id(draw: int, product_count: int) -> int:
    """A product id whose kind is ``tariff`` (ids with ``id % 3 == 0``)."""
    tariff = (draw // 3) * 3 + 3
    return tariff if tariff <= product_count else 3


def _ip_for(account_id: int) -> str:
    """Unique per account: 10.0.0.0/8 has room for 16.7M accounts."""
    n = account_id % (1 << 24)
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def _mac_for(seed: int, account_id: int) -> str:
    low = account_id & 0xFFFFFF
    return "02:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}".format(
        seed & 0xFF, (account_id >> 24) & 0xFF, *low.to_bytes(3, "big")
    )
