"""The list endpoints' semantics: limit/page, sortfield/sortorder, sqlfilters, pagination_data.

Mirrors the ``index()`` methods of Dolibarr's API classes (protocols.md §1.4): ``limit`` defaults to
100 and 0 means no LIMIT clause, ``page`` is 0-based (negative = 0), ``sortfield`` goes straight into
ORDER BY (an unknown column is a DB error, 503), and ``sqlfilters`` is forged into the WHERE clause
on DB column names. Rows are fetched in rowid order without building the whole table when nothing
but the rowid order is asked for.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from etl.simulators.miclinik import sqlfilters
from etl.simulators.miclinik.errors import RestError
from etl.simulators.miclinik.rows import ColumnView, Getter
from etl.simulators.miclinik.sqlvalues import fold


@dataclass(frozen=True)
class Resource:
    """What differs between the list endpoints of products, thirdparties, orders and users."""

    columns: Mapping[str, Getter]
    default_sort: str
    list_error: str  # "Error when retrieve product list"
    source: str  # PHP file named in ``debug``
    empty_old: str  # OLD profile's 404 text on an empty list


@dataclass
class ListQuery:
    """The parsed query string of a list call."""

    limit: int = 100
    page: int = 0
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    sqlfilters: str = ""
    properties: list[str] | None = None
    pagination_data: bool = False

    @property
    def offset(self) -> int:
        """Rows skipped before this page."""
        return self.limit * self.page if self.limit > 0 else 0


def int_param(query: Mapping[str, str], name: str, default: int) -> int:
    """An integer parameter as Restler validates it (400 on a non-integer)."""
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        # [guess] Restler's validator text
        message = f"Invalid value specified for `{name}`. Expecting integer value"
        raise RestError(400, message, source="Validator.php:0") from None


def bool_param(query: Mapping[str, str], name: str) -> bool:
    """A boolean parameter (``true``/``1``)."""
    return query.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def parse_query(query: Mapping[str, str], resource: Resource, *, new: bool) -> ListQuery:
    """Read limit, page, sort, filters and (NEW only) properties and pagination_data."""
    limit = max(0, int_param(query, "limit", 100))
    page = max(0, int_param(query, "page", 0))
    fields = [f.strip() for f in (query.get("sortfield") or resource.default_sort).split(",") if f.strip()]
    orders = [o.strip().upper() for o in (query.get("sortorder") or "ASC").split(",")]
    sort = [(name, (orders[i] if i < len(orders) else orders[-1]) == "DESC") for i, name in enumerate(fields)]
    properties = None
    if new and query.get("properties"):
        properties = [p.strip() for p in query["properties"].split(",") if p.strip()]
    return ListQuery(
        limit=limit,
        page=page,
        sort=sort,
        sqlfilters=query.get("sqlfilters", "").strip(),
        properties=properties,
        pagination_data=new and bool_param(query, "pagination_data"),
    )


def compile_filter(
    text: str, resource: Resource, *, new: bool, now: datetime | None = None, user_id: int = 1
) -> sqlfilters.Expr | None:
    """Parse ``sqlfilters``: a refused filter is 400 (NEW) or 503 (OLD), SQL the DB rejects is 503."""
    if not text:
        return None
    try:
        expr = sqlfilters.parse(text, "new" if new else "old", now=now, user_id=user_id)
    except sqlfilters.SqlFilterSqlError as error:
        raise RestError(503, f"{resource.list_error} : {error.db_error}", source=resource.source) from None
    except sqlfilters.SqlFilterError as error:
        raise RestError(error.status, error.api_message, source=f"{resource.source}:216") from None
    for name in sorted(expr.columns()):
        if name not in resource.columns and f"t.{name}" not in resource.columns:
            raise RestError(
                503, f"{resource.list_error} : Unknown column '{name}' in 'where clause'", source=resource.source
            )
    return expr


def check_sort(query: ListQuery, resource: Resource) -> list[tuple[Getter, bool]]:
    """The getters to sort by; an unknown column is the DB error Dolibarr passes on as 503."""
    getters = []
    for name, descending in query.sort:
        key = name.lower()
        getter = resource.columns.get(key) or resource.columns.get(f"t.{key}")
        if getter is None:
            raise RestError(
                503, f"{resource.list_error} : Unknown column '{name}' in 'order clause'", source=resource.source
            )
        getters.append((getter, descending))
    return getters


def _sort_key(getter: Getter) -> Callable[[object], tuple]:
    def key(row: object) -> tuple:
        value = getter(row)
        if value is None:
            return (0, 0)  # NULL sorts first in ascending order, as in MariaDB
        return (1, fold(value) if isinstance(value, str) else value)

    return key


def sort_rows(rows: list, getters: Sequence[tuple[Getter, bool]]) -> list:
    """ORDER BY several columns (stable, so ties keep rowid order)."""
    for getter, descending in reversed(getters):
        rows = sorted(rows, key=_sort_key(getter), reverse=descending)
    return rows


def filter_rows(rows: Sequence, expr: sqlfilters.Expr, resource: Resource) -> list:
    """Rows the forged WHERE clause keeps (columns were checked when the filter was compiled)."""
    columns = resource.columns
    matches = expr.predicate()
    return [row for row in rows if matches(ColumnView(row, columns))]


def list_body(items: list[str], total: int, query: ListQuery) -> str:
    """The JSON text of a list answer: a bare array, or NEW's ``pagination_data=true`` envelope."""
    array = f"[{','.join(items)}]"
    if not query.pagination_data:
        return array
    # [guess] Dolibarr divides by the limit; with limit 0 (everything) there is one page, or none
    page_count = math.ceil(total / query.limit) if query.limit > 0 else int(total > 0)
    pagination = json.dumps(
        {"total": total, "page": query.page, "page_count": page_count, "limit": query.limit}, separators=(",", ":")
    )
    return f'{{"data":{array},"pagination":{pagination}}}'


def select_rows(
    query: ListQuery,
    resource: Resource,
    expr: sqlfilters.Expr | None,
    table: RowSource,
    cache: SortCache,
    keep: Callable[[Any], bool] | None = None,
) -> tuple[list, int]:
    """The rows of the requested page and the total number of matching rows.

    When only rowid order is asked for, the table pages itself (building only those rows) and the
    total is counted only for ``pagination_data``; otherwise the whole table is filtered and sorted.
    """
    getters = check_sort(query, resource)
    rowid_only = len(query.sort) == 1 and query.sort[0][0].lower() in ("t.rowid", "rowid")
    start = keyset_start(query.sqlfilters) if rowid_only and not query.sort[0][1] else None
    if expr is not None and start is not None and not query.pagination_data:
        return seek_rows(query, resource, expr, table, start, keep), -1
    if expr is None and keep is None and rowid_only:
        rows = table.page(query.offset, query.limit, query.sort[0][1])
        return rows, table.count() if query.pagination_data else -1
    if expr is None and keep is None:
        key = (resource.list_error, tuple(query.sort))
        rows = cache.get(key, lambda: sort_rows(table.all(), getters))
    else:
        rows = [row for row in table.all() if keep(row)] if keep else table.all()
        if expr is not None:
            rows = filter_rows(rows, expr, resource)
        rows = sort_rows(rows, getters)
    stop = query.offset + query.limit if query.limit > 0 else None
    return rows[query.offset : stop], len(rows)


_KEYSET = re.compile(r"^\(\s*t\.rowid\s*:\s*(>=?)\s*:\s*(\d+)\s*\)(?:\s+and\s+(?P<rest>.*))?$", re.I | re.S)


def keyset_start(text: str) -> int | None:
    """The rowid a ``(t.rowid:>:N) and ...`` filter starts after, when the index can seek to it.

    Only a leading rowid bound joined by ``and`` to criteria without ``or`` qualifies: then no
    row at or below the bound can match, whatever the rest says (``and`` binds tighter than ``or``).
    """
    match = _KEYSET.match(text)
    if match is None or re.search(r"\bor\b", match.group("rest") or "", re.I):
        return None
    bound = int(match.group(2))
    return bound - 1 if match.group(1) == ">=" else bound


def seek_rows(
    query: ListQuery,
    resource: Resource,
    expr: sqlfilters.Expr,
    table: RowSource,
    after: int,
    keep: Callable[[Any], bool] | None,
) -> list:
    """Like a primary-key range scan: walk rows above ``after`` in rowid order until the page is full."""
    matches, columns, wanted = expr.predicate(), resource.columns, query.offset + query.limit
    rows: list = []
    for row in table.rows_after(after):
        if (keep is None or keep(row)) and matches(ColumnView(row, columns)):
            rows.append(row)
            if query.limit > 0 and len(rows) >= wanted:
                break
    return rows[query.offset : wanted if query.limit > 0 else None]


class RowSource(Protocol):
    """What :func:`select_rows` needs from a table."""

    def page(self, offset: int, limit: int, descending: bool) -> list: ...

    def count(self) -> int: ...

    def all(self) -> list: ...

    def rows_after(self, rowid: int) -> Iterator[Any]: ...


class SortCache:
    """Whole-table orderings, reused until the next write (a products page must not re-sort 5,000 rows)."""

    def __init__(self, version: Callable[[], int]) -> None:
        self.version = version
        self.entries: dict[object, tuple[int, list]] = {}

    def get(self, key: object, build: Callable[[], list]) -> list:
        """The cached ordering for ``key``, rebuilt when the data changed since."""
        version = self.version()
        hit = self.entries.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        rows = build()
        self.entries[key] = (version, rows)
        return rows
