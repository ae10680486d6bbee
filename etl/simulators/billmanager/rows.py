"""Database-shaped rows of the simulated BILLmanager and how their values are written on the wire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

CENT = Decimal("0.01")

# (id, world method, name, module): payment methods every installation configures.
PAYMETHODS: tuple[tuple[int, str, str, str], ...] = (
    (1, "card", "Bank card", "pmstripe"),
    (2, "bank", "Bank transfer", "pmbill"),
    (3, "cash", "Cash", "pmcash"),
)
PAYMETHOD_BY_METHOD = {method: pm_id for pm_id, method, _, _ in PAYMETHODS}

# Service statuses [guess at the numbers]: 1 ordered, 2 active, 3 suspended, 5 processing.
ITEM_STATUS: dict[int, tuple[str, str]] = {
    1: ("Ordered", "blue"),
    2: ("Active", "green"),
    3: ("Suspended", "red"),
    5: ("Processing", "yellow"),
}
CLIENT_STATUS: dict[int, str] = {1: "active", 2: "blocked"}  # [guess] account_status wording
ORDER_PERIODS = (1, 3, 6, 12, 24, 36)


@dataclass(frozen=True, slots=True)
class Client:
    """A BILLmanager client (``account``); ``customer_id`` is 0 for clients created through the API."""

    id: int
    customer_id: int
    name: str
    email: str
    phone: str
    country: str
    project: int
    balance: Decimal
    status: int
    created_at: datetime
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class Login:
    """A BILLmanager ``user``: a login of a client (``account_id`` 0 for the admin)."""

    id: int
    account_id: int
    name: str
    email: str
    realname: str
    phone: str
    level: str
    password: str
    created_at: datetime
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class Plan:
    """A ``pricelist`` row: a tariff plan sold as ``itemtype`` services."""

    id: int
    product_id: int
    name: str
    price: Decimal
    currency: str
    itemtype: str
    created_at: datetime
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class Payment:
    """A ``payment`` row; ``true_id`` is the world payment (0 when created through the API)."""

    id: int
    account_id: int
    number: str
    amount: Decimal
    currency: str
    paymethod_id: int
    status: int
    created_at: datetime
    changed_at: datetime
    true_id: int


@dataclass(frozen=True, slots=True)
class Item:
    """A service of one item type (``vds``, ``soft``); ``true_id`` is the world account or order it renders."""

    id: int
    itemtype: str
    account_id: int
    pricelist_id: int
    name: str
    domain: str
    ip: str
    status: int
    period: int
    created_at: datetime
    expire_at: datetime
    changed_at: datetime
    true_id: int


@dataclass(frozen=True, slots=True)
class BasketEntry:
    """One line of a client's cart, waiting for checkout."""

    id: int
    cart_id: int
    account_id: int
    itemtype: str
    pricelist_id: int
    period: int


def money(amount: Decimal, currency: str) -> str:
    """``120.00 EUR``, the way list columns show amounts."""
    return f"{amount.quantize(CENT)} {currency}"


def minute(moment: datetime) -> str:
    """``2024-05-01 10:00`` (UTC), as ``tz_registration_date`` shows."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def day(moment: datetime) -> str:
    """``2024-05-01``, as service and payment dates show."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def stamp(moment: datetime) -> str:
    """``2024-05-01 10:00:00`` (UTC): the [guess] ``changedate`` column every row carries."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def pool_ip(n: int) -> str:
    """The n-th address handed to services created or re-addressed here (172.16.0.0/12, clear of the world's 10/8)."""
    n = n % ((1 << 20) - 2) + 1
    return f"172.{16 + (n >> 16)}.{n >> 8 & 255}.{n & 255}"
