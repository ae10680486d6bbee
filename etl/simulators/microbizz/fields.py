"""The complex types (objects) the simulator stores, and how they are read and written.

Every field name here is a [guess]: the vendor's field tables were not readable
(protocols.md §3.4). The names follow Microbizz's habit of lower-case words run
together (``customernumber``, ``productnumber``, ``usercode``). Each object also
carries ``changedate``/``changetime`` [guess: the names mirror the sync inputs]:
the moment it last changed, in the tenant's zone.

Rows are stored DB-column shaped: plain Python values per field (``bool`` for
booleans, :class:`datetime.date` for dates), never rendered JSON.
"""

from __future__ import annotations

from typing import Any

from etl.simulators.microbizz.population import unit
from etl.simulators.microbizz.types import BadValue, parse_value, render_value

FIELDS: dict[str, dict[str, str]] = {
    "customer": {
        "id": "number",
        "customernumber": "string",
        "name": "string",
        "contact": "string",
        "address": "string",
        "zip": "string",
        "city": "string",
        "country": "string",
        "phone": "string",
        "email": "string",
        "cvr": "string",
        "ean": "string",
        "type": "string",
        "closed": "boolean",
        "deleted": "boolean",
    },
    "user": {
        "id": "number",
        "usercode": "string",
        "name": "string",
        "email": "string",
        "phone": "string",
        "title": "string",
        "closed": "boolean",
        "deleted": "boolean",
    },
    "product": {
        "id": "number",
        "productnumber": "string",
        "name": "string",
        "description": "lstring",
        "price": "float",
        "costprice": "float",
        "unit": "string",
        "productgroup": "string",
        "vatrate": "float",
        "closed": "boolean",
        "deleted": "boolean",
    },
    "invoiceline": {
        "id": "number",
        "customerid": "number",
        "productnumber": "string",
        "text": "string",
        "quantity": "float",
        "price": "float",
        "date": "date",
        "ordernumber": "string",
        "processed": "boolean",
        "deleted": "boolean",
    },
    "todo": {
        "id": "number",
        "number": "string",
        "customerid": "number",
        "userid": "number",
        "title": "string",
        "description": "lstring",
        "startdate": "date",
        "enddate": "date",
        "stateid": "number",
        "requireanswer": "boolean",
        "answer": "lstring",
        "closed": "boolean",
        "deleted": "boolean",
    },
}

# Written by the server only; ignored on input as the docs say of "(readonly)" fields.
READONLY = frozenset({"id", "changedate", "changetime", "processed", "closed", "answer"})
# A write may not change these on todos/invoice lines: CloseTodoByID and MarkInvoiceLinesAsProcessed do.
WRITABLE_FLAGS = {"customer": {"closed"}, "user": {"closed"}, "product": {"closed"}}
# Bold (required) fields when a record is created [guess].
REQUIRED_ON_CREATE: dict[str, tuple[str, ...]] = {
    "customer": ("name",),
    "user": ("name",),
    "product": ("name",),
    "invoiceline": ("customerid",),
    "todo": ("title",),
}

# Fields a later API version might add; clients must ignore them (protocols.md §3.2).
_FUTURE_FIELDS: tuple[tuple[str, Any], ...] = (
    ("externalref", ""),
    ("departmentid", 0),
    ("customfields", []),
    ("gpscoordinates", {"lat": 55.6761, "lng": 12.5683}),
    ("syncrevision", 3),
    ("colour", "#1f77b4"),
)


def empty_row(entity: str) -> dict[str, Any]:
    """A new record's values before the input is merged in."""
    row: dict[str, Any] = {}
    for name, kind in FIELDS[entity].items():
        if name == "id":
            continue
        row[name] = {"boolean": False, "number": 0, "float": 0.0, "date": None, "time": None}.get(kind, "")
    return row


def merge_input(entity: str, current: dict[str, Any] | None, payload: Any) -> dict[str, Any]:
    """``current`` with the known, writable fields of ``payload`` parsed in.

    Omitted optional fields keep their value (protocols.md §3.3: updates are merges);
    unknown fields are ignored. Raises :class:`BadValue` on a value of the wrong type
    or a missing required field on create.
    """
    if not isinstance(payload, dict):
        raise BadValue(f"{entity} must be a set (JSON object)")
    creating = current is None
    row = empty_row(entity) if creating else dict(current)
    writable_flags = WRITABLE_FLAGS.get(entity, set())
    for name, kind in FIELDS[entity].items():
        if name not in payload or (name in READONLY and name not in writable_flags):
            continue
        value = parse_value(kind, payload[name], name)
        if value is not None:
            row[name] = value
    if creating:
        for name in REQUIRED_ON_CREATE[entity]:
            if not row.get(name):
                raise BadValue(f"{name} is required to create a {entity}")
    return row


def render(entity: str, record_id: int, row: dict[str, Any], changed: tuple[str, str]) -> dict[str, Any]:
    """A stored row as the API writes the object."""
    kinds = FIELDS[entity]
    out: dict[str, Any] = {"id": record_id}
    for name, kind in kinds.items():
        if name != "id":
            out[name] = render_value(kind, row.get(name))
    out["changedate"], out["changetime"] = changed
    return out


def future_fields(seed: int, scope: str, key: object, rate: float) -> dict[str, Any]:
    """Fields this client does not know yet, for a deterministic share ``rate`` of ``(scope, key)``."""
    if rate <= 0 or unit(seed, "mbz-future", scope, key) >= rate:
        return {}
    first = int(unit(seed, "mbz-future-pick", scope, key) * len(_FUTURE_FIELDS))
    picked = (_FUTURE_FIELDS[first], _FUTURE_FIELDS[(first + 3) % len(_FUTURE_FIELDS)])
    return dict(picked)
