"""Microbizz's basic types: what the API accepts and how it writes values back.

protocols.md §3.3 [C]: booleans go out as ``1``/``0`` and come in as true/1/yes or
false/0/no; dates go out as ``YYYY-MM-DD`` and come in as ``2011-08-05``,
``05-08-2011``, ``5-8-2011`` or ``05/08/2011``; times go out as ``HH:MM:SS`` and come
in as ``18:45:00``, ``18:45`` or ``18.45``. Strings hold at most 255 characters,
lstrings 16,777,215.

Internally every moment is an integer count of microseconds since 1970 UTC; the
tenant's zone only matters where a date and a time are read or written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

STRING_MAX = 255
LSTRING_MAX = 16_777_215
_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no", ""}
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DANISH_DATE = re.compile(r"^(\d{1,2})[-/](\d{1,2})[-/](\d{4})$")
_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})(?::(\d{2}))?$")


class BadValue(ValueError):
    """An input value that does not parse as its Microbizz type; the message is the API's ``msg``."""


def parse_bool(value: Any, name: str = "value") -> bool:
    """true/1/yes or false/0/no (JSON booleans, numbers or strings, any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise BadValue(f"{name} is not a boolean: {value!r}")


def parse_date(value: Any, name: str = "date") -> date:
    """``2011-08-05`` (preferred), ``05-08-2011``, ``5-8-2011`` or ``05/08/2011`` (day first)."""
    text = str(value).strip() if isinstance(value, str | int) else ""
    try:
        if match := _ISO_DATE.match(text):
            year, month, day = (int(part) for part in match.groups())
            return date(year, month, day)
        if match := _DANISH_DATE.match(text):
            day, month, year = (int(part) for part in match.groups())
            return date(year, month, day)
    except ValueError:
        pass
    raise BadValue(f"{name} is not a date: {value!r}")


def parse_time(value: Any, name: str = "time") -> time:
    """``18:45:00`` (preferred), ``18:45`` or ``18.45``."""
    match = _TIME.match(value.strip()) if isinstance(value, str) else None
    if match:
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
    raise BadValue(f"{name} is not a time: {value!r}")


def parse_string(value: Any, name: str = "value", limit: int = STRING_MAX) -> str:
    """Text; numbers are accepted and written as text. Longer text is cut at ``limit`` [guess]."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadValue(f"{name} is not a string: {value!r}")
    return str(value)[:limit]


def parse_number(value: Any, name: str = "value") -> int:
    """An integer, also written as a string of digits."""
    if isinstance(value, bool):
        raise BadValue(f"{name} is not a number: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise BadValue(f"{name} is not a number: {value!r}")


def parse_float(value: Any, name: str = "value") -> float:
    """A decimal number such as ``12.59``, also written as a string."""
    if isinstance(value, bool):
        raise BadValue(f"{name} is not a float: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise BadValue(f"{name} is not a float: {value!r}")


PARSERS = {
    "string": parse_string,
    "lstring": lambda value, name: parse_string(value, name, LSTRING_MAX),
    "number": parse_number,
    "float": parse_float,
    "boolean": parse_bool,
    "date": parse_date,
    "time": parse_time,
}


def parse_value(kind: str, value: Any, name: str) -> Any:
    """Parse ``value`` as the Microbizz type ``kind`` (``None`` stays ``None``)."""
    return None if value is None else PARSERS[kind](value, name)


def render_value(kind: str, value: Any) -> Any:
    """A stored value as the API writes it."""
    if value is None:
        return "" if kind in ("string", "lstring", "date", "time") else 0
    if kind == "boolean":
        return 1 if value else 0
    if kind == "date":
        return format_date(value)
    if kind == "time":
        return format_time(value)
    if kind == "float":
        return round(float(value), 2)
    return value


def format_date(value: date) -> str:
    """``YYYY-MM-DD``."""
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def format_time(value: time) -> str:
    """``HH:MM:SS``."""
    return f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"


def to_micros(moment: datetime) -> int:
    """An aware datetime as microseconds since 1970 UTC."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int, zone: ZoneInfo) -> datetime:
    """Microseconds since 1970 UTC as a datetime in ``zone``."""
    return datetime.fromtimestamp(micros // 1_000_000, UTC).astimezone(zone)


def stamp(micros: int, zone: ZoneInfo) -> tuple[str, str]:
    """A moment as the API's ``(date, time)`` pair in the tenant's zone, seconds truncated."""
    local = from_micros(micros, zone)
    return format_date(local.date()), format_time(local.time())


def moment(day: date, clock_time: time, zone: ZoneInfo) -> int:
    """A local date and time as microseconds since 1970 UTC.

    In the autumn hour that occurs twice, the earlier one is taken (``fold=0``), so
    a watermark read back never skips the changes made in the repeated hour.
    """
    local = datetime.combine(day, clock_time).replace(tzinfo=zone, fold=0)
    return to_micros(local)


_DAY_MICROS = 86_400 * 1_000_000


def since_test(
    day: date, clock_time: time | None, zone: ZoneInfo, *, strict: bool, wallclock: bool
) -> tuple[int, Callable[[int], bool] | None]:
    """How ``…ByLastChange`` reads ``changedate``/``changetime``: a lower bound and the exact test.

    ``changetime`` given: changed strictly *after* it, at the second (``strict``, [C]), else at
    or after. Only ``changedate``: on or after that day. With ``wallclock`` the comparison is
    on the local date/time as stored (no zone), as a server keeping local DATETIME columns
    does [guess]: in the autumn hour that occurs twice, a change in its second pass compares
    as *earlier* than a watermark taken in its first. The lower bound is the earliest moment
    any admitted change can have (the local time's first occurrence); moments a day past it
    are admitted without converting them.
    """
    lower = moment(day, clock_time or time(0), zone)
    strictly = strict and clock_time is not None
    if not wallclock:
        return (lower + 1_000_000 if strictly else lower), None
    since = datetime.combine(day, clock_time or time(0))

    def admit(micros: int) -> bool:
        if micros >= lower + _DAY_MICROS:
            return True
        local = from_micros(micros, zone).replace(tzinfo=None)
        if clock_time is None:
            return local.date() >= day
        return local > since if strictly else local >= since

    return lower, admit


def local_stamp(day: str, clock_time: str, zone: ZoneInfo, *, fold: int = 0) -> int:
    """A local ``YYYY-MM-DD``/``HH:MM:SS`` as microseconds; ``fold=1`` picks the second pass of a repeated hour."""
    local = datetime.combine(parse_date(day), parse_time(clock_time)).replace(tzinfo=zone, fold=fold)
    return to_micros(local)
