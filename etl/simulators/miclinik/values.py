"""PHP's loose reading of values in request bodies: ``"3"``, ``3`` and ``3.0`` are all numbers.

Dolibarr copies body fields onto its model objects and lets PHP cast them, so a non-numeric
string becomes 0 rather than an error; dates are Unix timestamps or ISO ``YYYY-MM-DD[ HH:MM:SS]``
(reference page 004 says ISO is accepted, ``yymmdd`` is not).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

_NUMERIC_PREFIX = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?")


def to_decimal(value: object) -> Decimal:
    """``(float)`` as PHP casts it: the numeric prefix of a string, else 0."""
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    match = _NUMERIC_PREFIX.match(str(value)) if value is not None else None
    try:
        return Decimal(match.group(0).strip()) if match else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def to_int(value: object) -> int:
    """``(int)`` as PHP casts it."""
    return int(to_decimal(value))


def to_date(value: object, default: int) -> int:
    """A date field: Unix seconds, or an ISO date read as UTC; anything else keeps ``default``."""
    if value is None or value == "":
        return default
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    match = _ISO.fullmatch(text)
    if match is None:
        return default  # [guess] Dolibarr would store an empty date; the simulator keeps a sane one
    parts = [int(part) if part else 0 for part in match.groups()]
    try:
        return int(datetime(*parts, tzinfo=UTC).timestamp())  # type: ignore[misc]
    except ValueError:
        return default
