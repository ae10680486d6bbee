"""What the replay server lists: third parties and orders, and which of their fields vary by id.

Each copies the first record of a list answer recorded from a real Dolibarr 23 (tests/fixtures/
dolibarr) and varies the fields that differ between real rows: ids, refs, names, e-mail, customer
codes, addresses, creation dates. Every record is distinct (the ETL hashes them), and the sizes
stay those of the recording. Names draw on small pools that include non-ASCII text and a ``/``
(sent raw and as ``\\/``), so the ETL reads the bytes a real server sends.
"""

from __future__ import annotations

from typing import Any

from bench.replay_records import Resource, escaped

_COMPANIES = tuple(
    escaped(name)
    for name in (
        "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Soylent", "Stark", "Wayne", "Tyrell",
        "Müller & Söhne", "Łódź Trading", "Café Olé", "Nordisk A/S", "O'Brien Supplies", "Zhōngshān",
    )
)  # fmt: skip
_FORMS = tuple(escaped(form) for form in ("Ltd", "Inc", "GmbH", "SARL", "plc", "LLC", "S.A.", "BV", "AB"))
_STREETS = tuple(
    escaped(street)
    for street in ("High Street", "Station Road", "Church Lane", "Rue de la Paix", "Calle Mayor", "Hauptstraße")
)
_TOWNS = tuple(
    (escaped(town), escaped(code))
    for town, code in (
        ("London", "EC1A 1BB"), ("Leeds", "LS1 4AP"), ("Paris", "75002"), ("Madrid", "28013"),
        ("Berlin", "10117"), ("København", "1050"), ("Kraków", "31-001"),
    )
)  # fmt: skip
_DOMAINS = ("acme", "globex", "initech", "umbrella", "hooli", "vandelay", "soylent", "stark")
RECORDED_AT = 1795418624  # date_creation in the recording; earlier ids are older


def _mark_thirdparty(record: dict[str, Any]) -> None:
    record |= {
        "id": "@@id@@", "ref": "@@name@@", "name": "@@name@@", "email": "@@email@@", "phone": "@@phone@@",
        "code_client": "@@code@@", "address": "@@address@@", "zip": "@@zip@@", "town": "@@town@@",
        "date_creation": "@@=created@@",
    }  # fmt: skip


def _thirdparty_values(rowid: int) -> dict[str, str]:
    town, code = _TOWNS[rowid % len(_TOWNS)]
    company = _COMPANIES[rowid % len(_COMPANIES)]
    return {
        "id": str(rowid),
        "name": f"{company} {_FORMS[rowid // len(_COMPANIES) % len(_FORMS)]} {rowid}",
        "email": f"buyer{rowid}@{_DOMAINS[rowid % len(_DOMAINS)]}.example",
        "phone": f"+44 20 7946 {rowid % 10_000:04d}",
        "code": f"CU2611-{rowid:05d}",
        "address": f"{rowid % 240 + 1} {_STREETS[rowid % len(_STREETS)]}",
        "zip": code,
        "town": town,
        "created": str(RECORDED_AT - rowid * 61),
    }


def _mark_order(record: dict[str, Any]) -> None:
    record |= {
        "id": "@@id@@", "ref": "@@ref@@", "socid": "@@socid@@", "ref_client": "@@client@@",
        "ref_customer": "@@client@@", "date_creation": "@@=created@@",
        "online_payment_url": "http://127.0.0.1:8081/public/payment/newpayment.php?source=order&ref=@@ref@@",
    }  # fmt: skip
    for line in record["lines"]:
        line |= {"id": "@@id@@", "rowid": "@@id@@", "fk_commande": "@@id@@", "commande_id": "@@id@@"}


def _order_values(rowid: int) -> dict[str, str]:
    return {
        "id": str(rowid),
        "ref": f"SO2611-{rowid:05d}",
        "socid": str(rowid * 7 % 10_000 + 1),
        "client": f"PO-{100_000 + rowid}",
        "created": str(RECORDED_AT - rowid * 61),
    }


THIRDPARTIES = Resource(
    name="thirdparties",
    fixture="thirdparties_list_sqlfilters.json",
    mark=_mark_thirdparty,
    values=_thirdparty_values,
    empty_404="No third parties found",  # even on NEW servers (recorded), unlike orders and products
    source="api_thirdparties.class.php:270",
)
ORDERS = Resource(
    name="orders",
    fixture="orders_list.json",
    mark=_mark_order,
    values=_order_values,
    source="api_orders.class.php:0",
)
RESOURCES = {resource.name: resource for resource in (THIRDPARTIES, ORDERS)}
