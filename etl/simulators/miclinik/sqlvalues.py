"""MySQL/MariaDB value semantics for evaluating forged ``sqlfilters`` against simulator rows.

Dolibarr hands the forged WHERE clause to MariaDB, so whether a row matches depends on MySQL's rules,
not on Python's: NULL never compares equal, a number compared with a string compares as doubles, a
DATETIME compared with a string parses the string as a date, text compares under the table collation.

Row values are DB-column-shaped Python values: ``None`` (NULL), ``int``/``bool``/``Decimal``/``float``
(numeric columns), ``datetime``/``date`` (DATETIME/TIMESTAMP/DATE columns) and ``str``.

[guess] choices (the simulator has no column metadata unless the caller passes ``column_types``):

- Collation: Dolibarr's installer creates tables in ``utf8_unicode_ci``: case- and accent-insensitive,
  trailing spaces ignored by ``=``/``<``/``>`` (PAD SPACE) but not by ``LIKE``. We fold with NFKD,
  drop combining marks and casefold.
- A ``str`` row value that is a plain decimal number, compared with a numeric-looking string literal,
  compares as numbers (the simulator may keep DECIMAL columns as ``"12.75000000"``). One that looks
  like a date, compared with a date-like literal, compares as datetimes.
- Aware datetimes are compared in UTC with the tzinfo dropped (the server clock is taken to be UTC).
- A date string that MySQL could not convert makes the comparison NULL (no match).
"""

from __future__ import annotations

import contextlib
import math
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

Number = int | float | Decimal
_NUMERIC_TEXT = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)
_PLAIN_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?", re.ASCII)
_DOUBLE_PREFIX = re.compile(r"[ \t\n\r\f\v]*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)", re.ASCII)
_DATEISH = re.compile(r"\s*\d{4}(?:[-/.]\d{1,2}[-/.]\d{1,2}|\d{4})", re.ASCII)
_DT_DELIMITED = re.compile(
    r"\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2})(?::(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,6}))?)?)?)?\s*",
    re.ASCII,
)
_DT_COMPACT = re.compile(r"\s*(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2}))?\s*", re.ASCII)


def fold(text: str) -> str:
    """The collation key of ``text`` without trailing-space removal (what ``LIKE`` compares)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def mysql_double(text: str) -> float:
    """MySQL's string-to-double conversion: the longest numeric prefix, else 0."""
    match = _DOUBLE_PREFIX.match(text)
    return float(match.group(1)) if match else 0.0


def parse_datetime(text: str) -> datetime | None:
    """A string as MySQL would cast it to DATETIME (``YYYY-MM-DD[ HH:MM:SS]``, ``YYYYMMDD[HHMMSS]``)."""
    match = _DT_DELIMITED.fullmatch(text) or _DT_COMPACT.fullmatch(text)
    if match is None:
        return None
    parts = [int(p) if p else 0 for p in match.groups()[:6]]
    micro = match.groups()[6] if len(match.groups()) > 6 else None
    try:
        return datetime(*parts, int(micro.ljust(6, "0")) if micro else 0)  # type: ignore[misc]
    except ValueError:
        return None


def normalise(value: object) -> object:
    """Bring any row value to exactly one of None/int/float/Decimal/datetime/date/str (no subclasses)."""
    tv = type(value)
    if value is None or tv is str or tv is int or tv is date:
        return value
    if isinstance(value, Decimal):
        return None if value.is_nan() else Decimal(value)
    if isinstance(value, float):
        return None if math.isnan(value) else float(value)
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, str):
        return "".join((value,))
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            # Within hours of year 1 or 9999 the conversion overflows: keep the wall-clock time then.
            with contextlib.suppress(OverflowError):
                value = value.astimezone(UTC)
        return datetime(*value.timetuple()[:6], value.microsecond)
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def as_datetime(value: date) -> datetime:
    """A DATE widened to DATETIME at midnight, as MySQL does when comparing the two."""
    return value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)


def datetime_number(value: date) -> Number:
    """A DATETIME/DATE in numeric context: ``YYYYMMDDHHMMSS[.ffffff]`` / ``YYYYMMDD``."""
    if not isinstance(value, datetime):
        return int(value.strftime("%Y%m%d"))
    whole = int(value.strftime("%Y%m%d%H%M%S"))
    return Decimal(f"{whole}.{value.microsecond:06d}") if value.microsecond else whole


def as_text(value: object) -> str | None:
    """A row value as MySQL renders it in string context (left side of ``LIKE``)."""
    value = normalise(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat(" ", "microseconds" if value.microsecond else "seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return repr(value) if isinstance(value, float) else str(value)


def truthy(value: object) -> bool | None:
    """``value IS TRUE`` (None for NULL): numbers are true when non-zero, strings via their double."""
    value = normalise(value)
    if value is None:
        return None
    if isinstance(value, str):
        return mysql_double(value) != 0
    if isinstance(value, date):
        return True
    return value != 0  # type: ignore[operator]


def _sign(a: object, b: object) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


def _numcmp(a: Number, b: Number) -> int:
    if type(a) is float or type(b) is float:
        try:
            return _sign(float(a), float(b))
        except OverflowError:  # an integer beyond double range: compare exactly instead
            return _sign(Decimal(a), Decimal(b))
    return _sign(a, b)


class Literal:
    """One side of a comparison, with every conversion MySQL might need computed once."""

    __slots__ = ("dbl", "dt", "dtnum", "key", "kind", "num", "value")

    def __init__(self, value: object) -> None:
        value = normalise(value)
        self.value = value
        self.key: str | None = None
        self.num: Number | None = None
        self.dbl = 0.0
        self.dt: datetime | None = None
        self.dtnum: Number = 0
        if value is None:
            self.kind = ""
        elif isinstance(value, str):
            self.kind = "s"
            self.key = fold(value).rstrip(" ")
            self.num = _exact_number(value)
            self.dbl = mysql_double(value)
            self.dt = parse_datetime(value)
        elif isinstance(value, date):
            self.kind = "t"
            self.dt = as_datetime(value)
            self.dtnum = datetime_number(value)
        else:
            self.kind = "n"
            self.num = value  # type: ignore[assignment]
            try:
                self.dbl = float(value)  # type: ignore[arg-type]
            except OverflowError:
                self.dbl = math.inf if value > 0 else -math.inf  # type: ignore[operator]


def _exact_number(text: str) -> Number | None:
    if not _NUMERIC_TEXT.fullmatch(text):
        return None
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def compare(value: object, lit: Literal) -> int | None:
    """-1/0/1 comparing a row value with a literal the way MySQL would, or None when the result is NULL."""
    kind = lit.kind
    if value is None or not kind:
        return None
    tv = type(value)
    if tv is str:
        return _compare_text(value, lit)  # type: ignore[arg-type]
    if tv is int or tv is Decimal or tv is float:
        if tv is not int and (value.is_nan() if tv is Decimal else value != value):  # type: ignore[union-attr]
            return None
        if kind == "n":
            return _numcmp(value, lit.num)  # type: ignore[arg-type]
        if kind == "s":
            return _numcmp(value, lit.num if lit.num is not None else lit.dbl)  # type: ignore[arg-type]
        return _numcmp(value, lit.dtnum)  # type: ignore[arg-type]
    if tv is datetime or tv is date:
        if tv is datetime and value.tzinfo is not None:  # type: ignore[union-attr]
            value = normalise(value)
        if kind == "n":
            return _numcmp(datetime_number(value), lit.num)  # type: ignore[arg-type]
        return None if lit.dt is None else _sign(as_datetime(value), lit.dt)  # type: ignore[arg-type]
    normal = normalise(value)
    return None if normal is None or type(normal) is tv else compare(normal, lit)


def compare_text(value: object, lit: Literal) -> int | None:
    """:func:`compare` for a column declared as text: a string literal compares under the collation only."""
    text = as_text(value)
    if text is None or not lit.kind:
        return None
    return _sign(fold(text).rstrip(" "), lit.key) if lit.kind == "s" else _compare_text(text, lit)


def _compare_text(value: str, lit: Literal) -> int | None:
    kind = lit.kind
    if kind == "s":
        if lit.num is not None and _PLAIN_DECIMAL.fullmatch(value):
            return _numcmp(Decimal(value), lit.num)
        if lit.dt is not None and _DATEISH.match(value):
            parsed = parse_datetime(value)
            if parsed is not None:
                return _sign(parsed, lit.dt)
        return _sign(fold(value).rstrip(" "), lit.key)
    if kind == "n":
        exact = _PLAIN_DECIMAL.fullmatch(value)
        if exact and type(lit.num) is not float:
            return _numcmp(Decimal(value), lit.num)  # type: ignore[arg-type]
        return _sign(mysql_double(value), lit.dbl)
    parsed = parse_datetime(value)
    return None if parsed is None else _sign(parsed, lit.dt)


def like_matcher(pattern: str) -> Callable[[object], bool | None]:
    """``value LIKE pattern`` with ``%``/``_`` wildcards and ``\\`` as escape, under the collation."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            i += 1
            parts.append(re.escape(fold(pattern[i])))
        elif char == "%":
            if not parts or parts[-1] != ".*":  # runs of % would only slow the regex down
                parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(fold(char)))
        i += 1
    regex = re.compile("".join(parts), re.DOTALL)

    def matches(value: object) -> bool | None:
        text = value if type(value) is str else as_text(value)
        if text is None:
            return None
        return regex.fullmatch(fold(text)) is not None  # type: ignore[arg-type]

    return matches


def coercer(column_type: str) -> Callable[[object], object]:
    """Convert a row value to a declared column type: ``"number"``, ``"datetime"`` or ``"text"``."""
    if column_type == "number":
        return _to_number
    if column_type == "datetime":
        return _to_datetime
    if column_type == "text":
        return as_text
    raise ValueError(f"unknown column type {column_type!r} (number, datetime or text)")


def _to_number(value: object) -> object:
    value = normalise(value)
    if isinstance(value, str):
        return _exact_number(value) if _NUMERIC_TEXT.fullmatch(value) else mysql_double(value)
    return datetime_number(value) if isinstance(value, date) else value


def _to_datetime(value: object) -> object:
    value = normalise(value)
    if isinstance(value, str):
        return parse_datetime(value)
    return value if isinstance(value, date) or value is None else parse_datetime(str(value))
