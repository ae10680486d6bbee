"""One ``(field:operator:value)`` criterion, forged into SQL the way Dolibarr's callback does, read back typed.

Dolibarr never parses a value: its callback rewrites the text into a SQL fragment and MariaDB decides
what the fragment means. This module replays that rewriting (NEW = ``dolForgeSQLCriteriaCallback`` of
Dolibarr 23, OLD = the callback the old API classes used) and then reads the fragment as MySQL would:

- NEW: ``'quoted'`` is a string; unquoted digits an integer, numeric text a number, ``NULL`` (any case)
  NULL; any other unquoted text is stripped to ``[A-Za-z0-9_]`` and becomes a SQL word: ``TRUE``/``FALSE``
  or a **column name** (so ``(t.nom:=:Acme)`` asks for column ``acme`` and fails with a DB error).
  ``like`` keeps the value between the quotes only when it holds no other apostrophe; otherwise the
  quotes themselves become part of the pattern (a value with an apostrophe never matches, as recorded).
  ``in`` splits on commas; quoted items keep only letters, digits, ``_-.,=' `` and spaces.
- OLD: the same, except that an unquoted non-NULL value is cast to float (``abc`` -> ``0``).
- ``__NOW__`` / ``__USER_ID__`` are substituted in the forged text: NEW turns ``__NOW__`` into a quoted
  datetime (so it only works unquoted), OLD into an unquoted one (so it only works inside quotes) [guess].

A fragment MariaDB would reject raises :class:`ForgedSqlError`; [guess] sub-queries and arithmetic inside
``in`` lists, which the real server would run, are reported the same way.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

_PHP_WS = " \t\n\r\0\x0b"
_PHP_INT_MAX = 2**63 - 1
_OPERATORS = {"NOTLIKE": "NOT LIKE", "ISNOT": "IS NOT", "NOTIN": "NOT IN", "!=": "<>"}
COMPARISONS = frozenset({"=", "<>", "<", ">", "<=", ">=", "<=>"})
SQL_OPERATORS = COMPARISONS | {"LIKE", "NOT LIKE", "IN", "NOT IN", "IS", "IS NOT"}
IS_TARGETS = frozenset({"NULL", "TRUE", "FALSE", "UNKNOWN"})
# Words MySQL cannot read as a bare column name: an unquoted value spelling one is a syntax error.
_RESERVED_WORDS = (
    "ADD ALL ALTER AND AS ASC BETWEEN BINARY BY CASE COLLATE CREATE CROSS DELETE DESC DISTINCT DIV DROP "
    "ELSE EXISTS FROM GROUP HAVING IN INNER INSERT INTERVAL INTO IS JOIN LEFT LIKE LIMIT MOD NOT ON OR "
    "ORDER REGEXP RIGHT RLIKE SELECT SET TABLE THEN UNION UPDATE USING WHEN WHERE WITH XOR"
)
_RESERVED = frozenset(_RESERVED_WORDS.split())
_DIGITS = re.compile(r"[0-9]+")
_PHP_NUMERIC = re.compile(r"[ \t\n\r\v\f]*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[ \t\n\r\v\f]*")
_PHP_FLOAT_PREFIX = re.compile(r"[ \t\n\r\v\f]*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_SQL_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WORD = re.compile(r"\w+")
_QUOTED = re.compile(r"^'(.*)'$")
_QUOTED_NO_APOSTROPHE = re.compile(r"^'([^']*)'$")


class ForgedSqlError(Exception):
    """The SQL Dolibarr would forge from a filter that passed its own checks, which MariaDB rejects."""

    def __init__(self, near: str) -> None:
        super().__init__(near)
        self.near = near


@dataclass(frozen=True, slots=True)
class Env:
    """What ``__NOW__`` and ``__USER_ID__`` stand for (``now`` naive, in the server's clock)."""

    now: datetime
    user_id: int


@dataclass(frozen=True, slots=True)
class Column:
    """A column reference; the part after the last dot is lowercased (MySQL column names ignore case)."""

    name: str


@dataclass(frozen=True, slots=True)
class Const:
    """A SQL literal as a normalised Python value (``None`` is NULL)."""

    value: object


Operand = Column | Const


@dataclass(frozen=True, slots=True)
class Criterion:
    """``left op right``: ``right`` is an operand, a tuple of operands (IN), a pattern (LIKE) or an IS target."""

    left: Operand
    op: str
    right: Operand | tuple[Operand, ...] | str

    def columns(self) -> set[str]:
        """Every column the forged fragment reads."""
        right = self.right if isinstance(self.right, tuple) else (self.right,)
        return {o.name for o in (self.left, *right) if isinstance(o, Column)}


def uses_env(raw: str) -> bool:
    """Whether the criterion text mentions a substitution token (so its meaning depends on the env)."""
    return "__NOW__" in raw or "__USER_ID__" in raw


def forge(raw: str, grammar: str, env: Env) -> Criterion:
    """Read ``field:op:value`` (the text between the criterion's parentheses) as the forged SQL means it."""
    field, op, value = raw.split(":", 2)
    left = _left_operand(re.sub(r"[^a-z0-9._]", "", field.strip(_PHP_WS), flags=re.I | re.A), grammar, env)
    operator = re.sub(r"[^a-z<>!=]", "", op.strip(_PHP_WS), flags=re.I | re.A).upper()
    operator = _OPERATORS.get(operator, operator)
    if operator not in SQL_OPERATORS:
        raise ForgedSqlError(f"{operator} {value}".strip())
    if operator in ("IN", "NOT IN"):
        item = _new_list_item if grammar == "new" else _old_list_item
        items = tuple(_as_value(item(part, grammar, env), part) for part in value.split(","))
        return Criterion(left, operator, items)
    if operator in ("LIKE", "NOT LIKE"):
        match = _QUOTED_NO_APOSTROPHE.search(value)
        return Criterion(left, operator, _in_quotes(match.group(1) if match else value, grammar, env))
    right = _new_scalar(value, env) if grammar == "new" else _old_scalar(value, env)
    if operator in ("IS", "IS NOT"):
        if not isinstance(right, str):
            raise ForgedSqlError(value)
        return Criterion(left, operator, right)
    return Criterion(left, operator, _as_value(right, value))


def _as_value(token: Operand | str, text: str) -> Operand:
    """An IS-only word (``UNKNOWN``) is not a value; ``NULL``/``TRUE``/``FALSE`` are."""
    if isinstance(token, str):
        if token == "UNKNOWN":
            raise ForgedSqlError(text)
        return Const({"NULL": None, "TRUE": 1, "FALSE": 0}[token])
    return token


def _new_scalar(value: str, env: Env) -> Operand | str:
    quoted = _QUOTED.search(value)
    if quoted:
        return Const(_in_quotes(quoted.group(1), "new", env))
    if re.fullmatch("null", value, re.I | re.A):
        return "NULL"
    if _DIGITS.fullmatch(value):
        return Const(_php_int(value))
    numeric = _PHP_NUMERIC.fullmatch(value)
    if numeric:
        return _php_float(float(numeric.group(1)), "new", env)
    return _word(re.sub(r"[^a-z0-9_]", "", value, flags=re.I | re.A), "new", env, is_target=True)


def _old_scalar(value: str, env: Env) -> Operand | str:
    quoted = _QUOTED.search(value)
    if quoted:
        return Const(_in_quotes(quoted.group(1), "old", env))
    if re.fullmatch("null", value, re.I | re.A):
        return "NULL"
    prefix = _PHP_FLOAT_PREFIX.match(value)
    return _php_float(float(prefix.group(1)) if prefix else 0.0, "old", env)


def _new_list_item(part: str, grammar: str, env: Env) -> Operand | str:
    part = part.strip(_PHP_WS)
    quoted = _QUOTED.search(part)
    if quoted:
        return Const(_in_quotes(_sanitize(quoted.group(1), quote_mode=2), grammar, env))
    if _DIGITS.fullmatch(part):
        return Const(_php_int(part))
    numeric = _PHP_NUMERIC.fullmatch(part)
    if numeric:
        return _php_float(float(numeric.group(1)), grammar, env)
    fragment = re.sub(r"[^a-z0-9_<>=!\s]", "", part, flags=re.I | re.A)
    if not re.fullmatch(r"[A-Za-z0-9_]+", fragment):
        raise ForgedSqlError(fragment or ")")  # empty item, or a sub-query / expression [guess]
    return _word(fragment, grammar, env, is_target=False)


def _old_list_item(part: str, grammar: str, env: Env) -> Operand | str:
    quoted = _QUOTED.search(part)
    if quoted:
        return Const(_in_quotes(_sanitize(quoted.group(1), quote_mode=1), grammar, env))
    fragment = _sanitize(part, quote_mode=1).strip(" ")
    if _SQL_NUMBER.fullmatch(fragment):
        return _number(fragment)
    if not re.fullmatch(r"\w+(?:\.\w+)*", fragment):
        raise ForgedSqlError(fragment or ")")
    return _left_operand(fragment, grammar, env)


def _sanitize(text: str, quote_mode: int) -> str:
    """``$db->sanitize($text, quote_mode, 1, 1, 1)``: letters, digits, ``_-.,=`` and spaces survive."""
    kept = "".join(c for c in text if c in "0123456789_-.,= " or c.isalpha() or (c == "'" and quote_mode))
    if quote_mode != 1:
        return kept
    pieces = []
    for piece in kept.split(","):
        inner = _QUOTED.search(piece)
        pieces.append("'" + inner.group(1).replace("'", "") + "'" if inner else piece.replace("'", ""))
    return ",".join(pieces)


def _in_quotes(text: str, grammar: str, env: Env) -> str:
    """A string literal's content after the final ``str_replace`` of the tokens."""
    if "__NOW__" in text:
        if grammar == "new":  # the quoted replacement closes the literal early
            raise ForgedSqlError(text.replace("__NOW__", f"'{_idate(env.now)}'"))
        text = text.replace("__NOW__", _idate(env.now))
    return text.replace("__USER_ID__", str(env.user_id))


def _idate(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _php_int(digits: str) -> int:
    """``(int)`` of a digit string: PHP saturates at PHP_INT_MAX."""
    digits = digits.lstrip("0") or "0"
    return _PHP_INT_MAX if len(digits) > 19 else min(int(digits), _PHP_INT_MAX)


def _php_float(number: float, grammar: str, env: Env) -> Operand | str:
    """A PHP float concatenated into SQL: shortest repr; INF/NAN print as words MySQL reads as columns."""
    if not math.isfinite(number):
        return _word("NAN" if math.isnan(number) else "INF", grammar, env, is_target=False)
    text = repr(number)
    return Const(number) if "e" in text else Const(Decimal(text))


def _number(text: str) -> Const:
    if "e" in text.lower():
        return Const(float(text))
    if _DIGITS.fullmatch(text.lstrip("+-")) and len(text) < 19:
        return Const(int(text))
    return Const(Decimal(text))  # MySQL reads long integer literals as DECIMAL


def _word(word: str, grammar: str, env: Env, *, is_target: bool) -> Operand | str:
    """An unquoted SQL word after token substitution: a keyword, a number or a column."""
    word = word.replace("__USER_ID__", str(env.user_id))
    if "__NOW__" in word:
        if word == "__NOW__" and grammar == "new":
            return Const(env.now)
        raise ForgedSqlError(word.replace("__NOW__", _idate(env.now)))
    upper = word.upper()
    if upper in IS_TARGETS and (is_target or upper != "UNKNOWN"):
        return upper
    if _SQL_NUMBER.fullmatch(word):
        return _number(word)
    if not word or upper in _RESERVED or not _WORD.fullmatch(word):
        raise ForgedSqlError(word or ")")
    return Column(word.lower())


def _left_operand(text: str, grammar: str, env: Env) -> Operand:
    """The field part: a (qualified) column, or a literal when it spells one (``1``, ``null``)."""
    if _SQL_NUMBER.fullmatch(text):
        return _number(text)
    if "." not in text:
        token = _word(text, grammar, env, is_target=False)
        return _as_value(token, text)
    parts = text.replace("__USER_ID__", str(env.user_id)).split(".")
    if "__NOW__" in text or any(not p or _DIGITS.fullmatch(p) or not _WORD.fullmatch(p) for p in parts):
        raise ForgedSqlError(text)
    return Column(".".join([*parts[:-1], parts[-1].lower()]))
