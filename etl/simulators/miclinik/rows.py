"""Compact, DB-column-shaped rows of the simulated Dolibarr tables.

One slotted object per row of ``llx_product``, ``llx_societe``, ``llx_commande`` (with its
``llx_commandedet`` lines) and ``llx_user``; the wide JSON objects are rendered from these on read.
:class:`ColumnView` shows a row under its SQL column names (``t.nom``, ``t.fk_statut`` ...), which
is what ``sqlfilters`` and ``sortfield`` address, never the JSON names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal


@dataclass(slots=True)
class ProductRow:
    """A row of ``llx_product``; ``weight_units`` stays NULL until an update writes 0, as Dolibarr's does."""

    rowid: int
    ref: str
    label: str
    fk_product_type: int
    price: Decimal
    tva_tx: Decimal
    datec: int
    tms: int
    tosell: int = 1
    tobuy: int = 0
    description: str = ""
    price_base_type: str = "HT"
    price_min: Decimal = Decimal(0)
    note_public: str | None = None
    note_private: str | None = None
    barcode: str | None = None
    ref_ext: str | None = None
    weight_units: int | None = None
    true_id: int = 0

    @property
    def price_ttc(self) -> Decimal:
        """Price including VAT, rounded as MAIN_MAX_DECIMALS_UNIT (5) rounds it."""
        return (self.price * (1 + self.tva_tx / 100)).quantize(Decimal("0.00001"))


@dataclass(slots=True)
class ThirdpartyRow:
    """A row of ``llx_societe`` (the JSON ``name`` is the column ``nom``)."""

    rowid: int
    nom: str
    client: int
    code_client: str | None
    datec: int
    tms: int
    email: str | None = None
    phone: str | None = None
    address: str = ""
    zip: str | None = None
    town: str | None = None
    fk_pays: int | None = None
    country_code: str = ""
    name_alias: str = ""
    fournisseur: int = 0
    status: int = 1
    tva_intra: str = ""
    siren: str = ""
    typent_id: int = 0
    url: str | None = None
    note_public: str | None = None
    note_private: str | None = None
    ref_ext: str | None = None
    true_id: int = 0


@dataclass(slots=True)
class LineRow:
    """A row of ``llx_commandedet``; totals are kept as Dolibarr stores them."""

    rowid: int
    fk_commande: int
    fk_product: int | None
    product_type: int
    qty: Decimal
    subprice: Decimal
    tva_tx: Decimal
    description: str = ""
    remise_percent: Decimal = Decimal(0)
    rang: int = 0

    @property
    def total_ht(self) -> Decimal:
        """Net total, rounded to MAIN_MAX_DECIMALS_TOT (2)."""
        return (self.qty * self.subprice * (1 - self.remise_percent / 100)).quantize(Decimal("0.01"))

    @property
    def total_tva(self) -> Decimal:
        """VAT amount, rounded to 2 decimals."""
        return (self.total_ht * self.tva_tx / 100).quantize(Decimal("0.01"))

    @property
    def total_ttc(self) -> Decimal:
        """Gross total."""
        return self.total_ht + self.total_tva


@dataclass(slots=True)
class OrderRow:
    """A row of ``llx_commande`` with its lines; ``fk_statut`` -1 cancelled, 0 draft, 1 validated, 3 closed."""

    rowid: int
    ref: str
    fk_soc: int
    fk_statut: int
    date_commande: int
    datec: int
    tms: int
    date_valid: int | None = None
    ref_client: str | None = None
    note_public: str = ""
    note_private: str = ""
    facture: int = 0
    fk_user_author: int = 1
    fk_user_valid: int | None = None
    ref_ext: str | None = None
    lines: list[LineRow] = field(default_factory=list)
    true_id: int = 0

    @property
    def total_ht(self) -> Decimal:
        """Sum of the lines' net totals."""
        return sum((line.total_ht for line in self.lines), Decimal(0))

    @property
    def total_tva(self) -> Decimal:
        """Sum of the lines' VAT."""
        return sum((line.total_tva for line in self.lines), Decimal(0))

    @property
    def total_ttc(self) -> Decimal:
        """Sum of the lines' gross totals."""
        return self.total_ht + self.total_tva


@dataclass(slots=True)
class UserRow:
    """A row of ``llx_user``; ``api_key`` is never rendered."""

    rowid: int
    login: str
    lastname: str
    firstname: str
    email: str
    admin: int
    entity: int
    datec: int
    tms: int
    api_key: str | None = None
    statut: int = 1
    job: str = ""
    office_phone: str = ""
    gender: str = ""
    rights: frozenset[str] = frozenset()
    true_id: int = 0


def sql_datetime(epoch: int | None) -> str | None:
    """A Unix time as MariaDB prints a DATETIME (UTC)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


Getter = Callable[[object], object]


def _attr(name: str) -> Getter:
    return lambda row: getattr(row, name)


def _date(name: str) -> Getter:
    def read(row: object) -> datetime | None:
        epoch = getattr(row, name)
        return None if epoch is None else datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)

    return read


def _const(value: object) -> Getter:
    return lambda row: value


# Column name (with the list query's alias) -> how to read it from a row.
PRODUCT_COLUMNS: dict[str, Getter] = {
    **{f"t.{name}": _attr(name) for name in (
        "rowid", "ref", "label", "description", "fk_product_type", "tosell", "tobuy", "price", "price_min",
        "price_base_type", "tva_tx", "note_public", "barcode", "ref_ext", "weight_units")},
    "t.price_ttc": _attr("price_ttc"), "t.note": _attr("note_private"), "t.entity": _const(1),
    "t.datec": _date("datec"), "t.tms": _date("tms"),
}  # fmt: skip
THIRDPARTY_COLUMNS: dict[str, Getter] = {
    **{f"t.{name}": _attr(name) for name in (
        "rowid", "nom", "client", "code_client", "email", "phone", "address", "zip", "town", "fk_pays",
        "name_alias", "fournisseur", "status", "tva_intra", "siren", "url", "note_public", "note_private", "ref_ext")},
    "t.fk_typent": _attr("typent_id"), "t.entity": _const(1), "t.datec": _date("datec"), "t.tms": _date("tms"),
}  # fmt: skip
ORDER_COLUMNS: dict[str, Getter] = {
    **{f"t.{name}": _attr(name) for name in (
        "rowid", "ref", "fk_soc", "fk_statut", "ref_client", "note_public", "note_private", "facture",
        "fk_user_author", "fk_user_valid", "total_ht", "total_tva", "total_ttc", "ref_ext")},
    "t.entity": _const(1), "t.date_commande": _date("date_commande"), "t.datec": _date("datec"),
    "t.date_valid": _date("date_valid"), "t.tms": _date("tms"), "t.date_creation": _date("datec"),
}  # fmt: skip
LINE_COLUMNS: dict[str, Getter] = {
    **{f"tl.{name}": _attr(name) for name in (
        "rowid", "fk_commande", "fk_product", "product_type", "qty", "subprice", "tva_tx", "description",
        "remise_percent", "rang", "total_ht", "total_tva", "total_ttc")},
}  # fmt: skip
USER_COLUMNS: dict[str, Getter] = {
    **{f"t.{name}": _attr(name) for name in (
        "rowid", "login", "lastname", "firstname", "email", "admin", "entity", "statut", "job", "office_phone")},
    "t.datec": _date("datec"), "t.tms": _date("tms"),
}  # fmt: skip


class ColumnView(Mapping[str, object]):
    """A row seen under its SQL column names; unknown names raise ``KeyError`` like an unknown column."""

    __slots__ = ("columns", "row")

    def __init__(self, row: object, columns: Mapping[str, Getter]) -> None:
        self.row = row
        self.columns = columns

    def __getitem__(self, key: str) -> object:
        getter = self.columns.get(key)
        if getter is None:
            # SQL names are case-insensitive, and an unaliased column resolves to the main table.
            name = key.lower()
            getter = self.columns.get(name) or self.columns.get(f"t.{name}") or self.columns[key]
        return getter(self.row)

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)
