"""Dolibarr's ``sqlfilters`` (Universal Filter Syntax) for the miclinik simulator: parse once, match fast.

``parse(text, grammar)`` replays what Dolibarr does with the parameter, then compiles what MariaDB would
do with the SQL it forges into a tree of small closures; ``Expr.matches(row)`` evaluates it against one
DB-column-shaped row (``{"t.rowid": 5, "t.nom": "Acme", ...}``).

NEW grammar (``forgeSQLFromUniversalSearchCriteria`` in Dolibarr 23, as recorded):

1. A filter that does not start with ``(`` and end with ``)`` gets them added.
2. Parentheses must balance: else ``Wrong balance of parenthesis in sqlfilters=<filter>``.
3. Every ``(field:op:value)`` with ``field`` in ``[A-Za-z0-9_.]``, ``op`` made of the letters of
   ``<>!=insotlke`` and ``value`` free of parentheses counts as a criterion; after removing the criteria,
   every ``and``/``or`` (any case) and every space, only parentheses may remain: else
   ``Bad syntax of the search string: <filter>``. Both give HTTP 400.

OLD grammar (API classes before the shared function): the balance check only (HTTP 503), then criteria
matching ``\\(([^:'()]+:[^:'()]+:[^:()]+)\\)`` are rewritten and the rest is copied into SQL as it is.

What passes these checks may still be SQL MariaDB rejects (``(t.a:sin:1)``, ``(a) andor (b)``, ``()``,
an unquoted word that is not a column): :class:`SqlFilterSqlError`, a subclass of :class:`SqlFilterError`,
for which the real server answers 503 ``Error when retrieve <x> list : <db error>``. Which columns
exist is the caller's business: check :meth:`Expr.columns` and answer unknown ones with that DB error.
How each criterion's value is read is documented in :mod:`etl.simulators.miclinik.sqlcriteria`, and
the MySQL comparison rules in :mod:`etl.simulators.miclinik.sqlvalues`.

[guess] choices: blank text and ``"0"`` (PHP-falsy, so Dolibarr skips the filter) match every row;
parentheses nested deeper than :data:`MAX_DEPTH` are a DB error (MariaDB's parser has a stack limit
too); ``__USER_ID__`` defaults to 1 (the admin the demo key belongs to); ``__NOW__`` defaults to the
time of parsing, in UTC; of the SQL the OLD grammar copies between criteria only parentheses, blanks,
``AND``/``OR``/``&&``/``||`` are evaluated, anything else (``NOT``, ``1=1``) is reported as a DB error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from etl.simulators.miclinik import sqlvalues
from etl.simulators.miclinik.sqlcriteria import Env, ForgedSqlError, forge, uses_env
from etl.simulators.miclinik.sqlpredicates import Predicate, Row, all_of, always, any_of, criterion_predicate

__all__ = ["GRAMMARS", "MAX_DEPTH", "Expr", "SqlFilterError", "SqlFilterSqlError", "parse"]

GRAMMARS = ("new", "old")
MAX_DEPTH = 64
DEFAULT_USER_ID = 1
NEW_CRITERION = re.compile(r"\(([a-zA-Z0-9_.]+:[<>!=insotlke]+:[^()]+)\)", re.I | re.A)
OLD_CRITERION = re.compile(r"\(([^:'()]+:[^:'()]+:[^:()]+)\)")
_REST = re.compile(r"(?P<ws>[ \t\n\r\f\v]+)|(?P<paren>[()])|(?P<sym>&&|\|\|)|(?P<word>\w+)|(?P<other>.)", re.S)
_SYNTAX = "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version"


class SqlFilterError(Exception):
    """A filter Dolibarr refuses: 400 in the NEW profile, 503 in the OLD one.

    ``filter`` is the text as sent, ``reason`` Dolibarr's error string, ``api_message`` the text of the
    RestException (without the ``Bad Request:`` prefix Restler adds), ``status`` the HTTP status.
    """

    def __init__(self, text: str, reason: str = "", *, grammar: str = "new") -> None:
        super().__init__(text)
        self.filter = text
        self.grammar = grammar
        self.reason = reason or f"Bad syntax of the search string: {text}"
        self.status = 400 if grammar == "new" else 503

    @property
    def api_message(self) -> str:
        """What the API puts after the reason phrase in ``error.message``."""
        if self.grammar == "new":
            return f"Error when validating parameter sqlfilters -> {self.reason}"
        return f"Error when validating parameter sqlfilters {self.filter}"

    def __str__(self) -> str:
        return self.api_message


class SqlFilterSqlError(SqlFilterError):
    """A filter Dolibarr accepts but whose forged SQL MariaDB rejects: 503 in both profiles.

    ``db_error`` is the database's message; the API answers ``Error when retrieve <x> list : <db_error>``.
    """

    def __init__(self, text: str, db_error: str, *, grammar: str = "new") -> None:
        super().__init__(text, db_error, grammar=grammar)
        self.db_error = db_error
        self.status = 503

    @property
    def api_message(self) -> str:
        """The database error (the caller prefixes the resource's ``Error when retrieve ... list : ``)."""
        return self.db_error


@dataclass(frozen=True, slots=True)
class _Crit:
    raw: str


@dataclass(frozen=True, slots=True)
class _Node:
    kind: str  # "AND" | "OR"
    children: tuple[_Node | _Crit, ...]


Tree = _Node | _Crit


def parse(
    text: str | None,
    grammar: str = "new",
    *,
    now: datetime | None = None,
    user_id: int | None = None,
    column_types: Mapping[str, str] | None = None,
) -> Expr:
    """Parse a ``sqlfilters`` value once; raise :class:`SqlFilterError` if the server would refuse it.

    ``now``/``user_id`` are what ``__NOW__``/``__USER_ID__`` stand for unless ``matches`` overrides them.
    ``column_types`` optionally declares columns as ``"number"``, ``"datetime"`` or ``"text"`` so values
    kept as strings compare the way the DB column type would.
    """
    if grammar not in GRAMMARS:
        raise ValueError(f"grammar must be one of {GRAMMARS}, not {grammar!r}")
    env = Env(_server_time(now), DEFAULT_USER_ID if user_id is None else int(user_id))
    if text is None or not text.strip() or text == "0":
        return Expr(text or "", grammar, None, env, column_types)
    checked = _check_new(text) if grammar == "new" else _check_old(text)
    try:
        tree = _Parser(_tokens(checked, grammar), checked).parse()
        return Expr(text, grammar, tree, env, column_types)
    except ForgedSqlError as exc:
        raise SqlFilterSqlError(text, _db_error(exc), grammar=grammar) from None


def _db_error(exc: ForgedSqlError) -> str:
    return f"{_SYNTAX} for the right syntax to use near '{exc.near}' at line 1"


def _server_time(now: datetime | None) -> datetime:
    moment = datetime.now(UTC) if now is None else now
    return sqlvalues.normalise(moment)  # type: ignore[return-value]


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _check_new(text: str) -> str:
    checked = text if re.search(r"^\(.*\)$", text) else f"({text})"
    if not _balanced(checked):
        raise SqlFilterError(text, f"Wrong balance of parenthesis in sqlfilters={checked}")
    residue = NEW_CRITERION.sub("()", checked)
    for allowed in ("and", "or", " "):  # str_ireplace: one pass per needle, in this order
        residue = re.sub(allowed, "", residue, flags=re.I | re.A)
    if re.search(r"[^()]", residue):
        raise SqlFilterError(text, f"Bad syntax of the search string: {checked}")
    return checked


def _check_old(text: str) -> str:
    if not _balanced(text):
        raise SqlFilterError(text, f"Bad sqlfilters={text}", grammar="old")
    return text


def _tokens(checked: str, grammar: str) -> list[tuple[object, int]]:
    """``(``, ``)``, ``AND``, ``OR`` and criteria, each with its offset; other SQL is refused."""
    regex = NEW_CRITERION if grammar == "new" else OLD_CRITERION
    tokens: list[tuple[object, int]] = []
    position = 0
    for match in regex.finditer(checked):
        tokens += _rest_tokens(checked, position, match.start())
        tokens.append((_Crit(match.group(1)), match.start()))
        position = match.end()
    tokens += _rest_tokens(checked, position, len(checked))
    return tokens


def _rest_tokens(text: str, start: int, end: int) -> list[tuple[object, int]]:
    tokens: list[tuple[object, int]] = []
    for match in _REST.finditer(text, start, end):
        kind, token = match.lastgroup, match.group()
        if kind == "ws":
            continue
        if kind == "paren":
            tokens.append((token, match.start()))
        elif kind == "sym":
            tokens.append(("AND" if token == "&&" else "OR", match.start()))
        elif kind == "word" and token.upper() in ("AND", "OR"):
            tokens.append((token.upper(), match.start()))
        else:  # [guess] NOT, comparisons or functions around criteria are not emulated
            raise ForgedSqlError(text[match.start() : match.start() + 80])
    return tokens


class _Parser:
    """Recursive descent over the forged SQL: ``expr := and (OR and)*``, ``and := primary (AND primary)*``."""

    def __init__(self, tokens: list[tuple[object, int]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.index = 0

    def parse(self) -> Tree:
        tree = self._expr(0)
        if self.index != len(self.tokens):
            self._fail()
        return tree

    def _peek(self) -> object:
        return self.tokens[self.index][0] if self.index < len(self.tokens) else None

    def _fail(self) -> None:
        near = self.text[self.tokens[self.index][1] :] if self.index < len(self.tokens) else ""
        raise ForgedSqlError(near[:80])

    def _expr(self, depth: int) -> Tree:
        return self._chain("OR", lambda: self._chain("AND", lambda: self._primary(depth)))

    def _chain(self, kind: str, operand: Callable[[], Tree]) -> Tree:
        children = [operand()]
        while self._peek() == kind:
            self.index += 1
            children.append(operand())
        if len(children) == 1:
            return children[0]
        flat: list[Tree] = []
        for child in children:
            flat += child.children if isinstance(child, _Node) and child.kind == kind else [child]
        return _Node(kind, tuple(flat))

    def _primary(self, depth: int) -> Tree:
        token = self._peek()
        if isinstance(token, _Crit):
            self.index += 1
            return token
        if token != "(" or depth >= MAX_DEPTH:
            self._fail()
        self.index += 1
        tree = self._expr(depth + 1)
        if self._peek() != ")":
            self._fail()
        self.index += 1
        return tree


class Expr:
    """A parsed filter: :meth:`matches` one row, :meth:`columns` it reads."""

    __slots__ = ("_cache", "_columns", "_env", "_pred", "_tree", "_types", "_uses_env", "grammar", "text")

    def __init__(
        self, text: str, grammar: str, tree: Tree | None, env: Env, column_types: Mapping[str, str] | None
    ) -> None:
        self.text = text
        self.grammar = grammar
        self._tree = tree
        self._env = env
        self._types = dict(column_types or {})
        for kind in self._types.values():
            sqlvalues.coercer(kind)  # an unknown type name fails here, at parse time
        self._cache: dict[tuple[datetime | None, int | None], Predicate] = {}
        self._columns: set[str] = set()
        self._uses_env = tree is not None and any(uses_env(c.raw) for c in _criteria(tree))
        self._pred = self._compile(tree, env, self._columns) if tree is not None else always

    def matches(self, row: Row, *, now: datetime | None = None, user_id: int | None = None) -> bool:
        """Whether MariaDB would return ``row`` for this filter (``now``/``user_id`` override parse's)."""
        if not self._uses_env or (now is None and user_id is None):
            return self._pred(row)
        return self.predicate(now=now, user_id=user_id)(row)

    def predicate(self, *, now: datetime | None = None, user_id: int | None = None) -> Predicate:
        """The compiled ``row -> bool`` for these substitutions: the fastest way to filter many rows."""
        if not self._uses_env or (now is None and user_id is None):
            return self._pred
        key = (now, user_id)
        pred = self._cache.get(key)
        if pred is None:
            if len(self._cache) > 64:
                self._cache.clear()
            env = Env(
                self._env.now if now is None else _server_time(now),
                self._env.user_id if user_id is None else int(user_id),
            )
            try:
                pred = self._cache[key] = self._compile(self._tree, env, set())  # type: ignore[arg-type]
            except ForgedSqlError as exc:
                raise SqlFilterSqlError(self.text, _db_error(exc), grammar=self.grammar) from None
        return pred

    def columns(self) -> set[str]:
        """The columns the filter reads, as ``alias.column`` (column part lowercased) or bare names."""
        return set(self._columns)

    def __repr__(self) -> str:
        return f"Expr({self.text!r}, grammar={self.grammar!r})"

    def _compile(self, tree: Tree, env: Env, columns: set[str]) -> Predicate:
        if isinstance(tree, _Crit):
            criterion = forge(tree.raw, self.grammar, env)
            columns |= criterion.columns()
            return criterion_predicate(criterion, self._types)
        preds = [self._compile(child, env, columns) for child in tree.children]
        return all_of(preds) if tree.kind == "AND" else any_of(preds)


def _criteria(tree: Tree) -> list[_Crit]:
    if isinstance(tree, _Crit):
        return [tree]
    return [crit for child in tree.children for crit in _criteria(child)]
