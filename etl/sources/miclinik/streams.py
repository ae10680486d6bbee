"""miclinik streams: one declaration per Dolibarr list.

| stream       | entity   | API call                        | incremental on |
|--------------|----------|---------------------------------|----------------|
| thirdparties | customer | GET /thirdparties               | t.tms          |
| products     | product  | GET /products                   | t.tms          |
| orders       | order    | GET /orders (lines embedded)    | t.tms          |
| users        | user     | GET /users                      | t.tms          |

Paging is keyset, not page numbers: ``sortfield=t.rowid``, ``page=0`` and
``sqlfilters=(t.rowid:>:<last id>)``. Page numbers shift when rows are deleted or
inserted during a scan and would skip or repeat records; keyset does not, and the
cursor (the last id staged) survives a crash. The grammar used is accepted by OLD
and NEW servers alike.

The end of a list is proven, never assumed from a short page (a server may cap its page
size silently, and a short page then looks like the end). NEW servers are asked
``pagination_data=true`` on a scan's first page: the count of the whole filtered list ends
the scan as soon as that many rows arrived, with no extra request (kept in the cursor).
Without a count (OLD servers, users, a server that ignores the parameter) a short page is
followed by one more ask after its last id, and only an empty answer (``[]`` or 404 "none
found") ends the list; a short page that is not empty is simply paged on, so a capped server
is read completely. A 404 right after a *full* page is asked again (an OLD server's glitch);
after a short page it agrees with that page and ends the list at once.

A scan is split into id ranges read at once (:meth:`DolibarrListStream.partition`): one probe
(``sortorder=DESC``, ``limit=1``) finds the highest id the scan's filter matches, the range up
to it is cut into equal widths, each paged by ``(t.rowid:<=:<upper>)`` as well, and the last
range has no upper bound, so a row added during the scan is read as it would be by one cursor.
Each range proves its own end as above (its count covers its own filter). A row above its
range's bound means the server ignored that filter: the stream fails, naming ``partitions: 1``.

Incremental scans add ``(t.tms:>=:'<watermark>')``. Dolibarr reads ``tms`` back as
null, yet filtering on it works (recorded fixtures). The next watermark is the
server's own clock (GET /status) at the start of the scan minus an overlap window
(option ``tms_overlap_seconds``), so changes made while a scan runs are read again
next time rather than lost; re-reading them is harmless because staging diffs by hash. The
default overlap (12 h 5 min) also covers a database zone down to UTC-12 (see
:class:`~etl.sources.miclinik.config.MiclinikOptions`). Orders change without their ``tms``
(lines and product fields, §1.9), and a tms filter never shows a deletion, so every stream is
swept in full weekly (``full_scan_every``).

Records reach staging undecoded (:mod:`etl.payload`): each is the server's own JSON
text, hashed and stored as sent. Only the ids at the two ends of a page are read here.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

from etl.http.errors import ProtocolError
from etl.sources.base import Cursor, Page, RecordRejected, Stream
from etl.sources.miclinik.client import MiclinikClient
from etl.sources.miclinik.config import MiclinikOptions


class DolibarrListStream(Stream):
    """A Dolibarr list read in rowid order, optionally only rows modified since a watermark."""

    resource: ClassVar[str]
    # Whether a NEW server counts this list with ``pagination_data=true`` (not /users, §1.4).
    counted: ClassVar[bool] = True
    incremental = True
    ascending_ids = True
    # A tms filter never returns a row deleted from the database: only a full scan sees deletions.
    full_scan_every = timedelta(days=7)
    client: MiclinikClient

    def start(self, watermark: Cursor | None) -> Cursor:
        return {"after": 0, "since": watermark.get("tms") if watermark else None}

    def position(self, cursor: Cursor) -> tuple[int]:
        return (int(cursor["after"]),)

    @functools.cached_property
    def next_watermark(self) -> Cursor:
        """The server's clock at connection minus the overlap, in the zone and layout its filters use
        (the same for every page of the scan: the clock is read once, when the client opens)."""
        options: MiclinikOptions = self.settings.options
        now = self.client.server_now or datetime.now(UTC)
        # OLD servers refuse a ":" inside a filter value, so they get MySQL's compact datetime form.
        layout = "%Y%m%d%H%M%S" if options.profile == "old" else "%Y-%m-%d %H:%M:%S"
        since = now - timedelta(seconds=options.tms_overlap_seconds)
        return {"tms": since.astimezone(ZoneInfo(options.tms_timezone)).strftime(layout)}

    def asks_count(self, cursor: Cursor) -> bool:
        """Whether this page asks the server to count the list: a NEW server's first page of a scan
        or of one of its partitions."""
        first = not cursor["after"] or bool(cursor.get("first"))
        return self.counted and self.settings.options.profile == "new" and first

    def query(self, cursor: Cursor) -> dict[str, str | int]:
        filters = [f"(t.rowid:>:{int(cursor['after'])})"]
        if cursor.get("upto") is not None:
            filters.append(f"(t.rowid:<=:{int(cursor['upto'])})")
        if cursor.get("since"):
            filters.append(f"(t.tms:>=:'{cursor['since']}')")
        query: dict[str, str | int] = {
            "limit": self.settings.page_size,
            "page": 0,
            "sortfield": "t.rowid",
            "sortorder": "ASC",
            "sqlfilters": " and ".join(filters),
        }
        if self.asks_count(cursor):
            query["pagination_data"] = "true"
        return query

    async def partition(self, cursor: Cursor, parts: int) -> list[Cursor]:
        """Cut the ids after ``cursor`` into up to ``parts`` ranges of equal width, each at least a
        page wide, the last open-ended; one cursor when the list is short or the probe finds nothing."""
        if cursor.get("upto") is not None or parts < 2:
            return [cursor]
        after = int(cursor["after"])
        probe = {**self.query({"after": after, "since": cursor.get("since")}), "limit": 1, "sortorder": "DESC"}
        probe.pop("pagination_data", None)
        # The probe is the list's first request: what it meets (a refused right, a bad answer) is the
        # stream's, exactly as its first page's would be.
        listing = await self.client.get_listing(self.resource, probe)
        highest = _rowid(self, listing.records[0]) if listing.records else None
        if highest is None or not after < highest <= MAX_ROWID:
            return [cursor]
        since = cursor.get("since")
        ranges = id_ranges(after, highest, parts, self.settings.page_size)
        if len(ranges) < 2:
            return [cursor]
        return [{"after": lower, **({"upto": upper} if upper is not None else {}), "since": since, "first": True}
                for lower, upper in ranges]  # fmt: skip

    def merge(self, cursors: list[Cursor]) -> Cursor:
        """From the lowest open partition's cursor on, with no upper bound: the finished partitions
        above it are read again."""
        return {"after": min(int(cursor["after"]) for cursor in cursors), "since": cursors[0].get("since")}

    async def fetch(self, cursor: Cursor) -> Page:
        # After a full page, a 404 "none found" may be a glitch of an OLD server: it is confirmed.
        # After a short one (``probe``) it agrees with that page, and ends the list at once.
        confirm = bool(cursor["after"]) and not cursor.get("probe")
        listing = await self.client.get_listing(self.resource, self.query(cursor), confirm_empty=confirm)
        records, watermark = listing.records, self.next_watermark
        # The count proves where the list ends; it is not a floor the scan must reach (Evidence.total):
        # under keyset paging a row deleted mid-scan skips nothing, yet the count still includes it.
        total = listing.total if listing.total is not None else cursor.get("total")
        seen = int(cursor.get("seen", 0)) + len(records)
        if not records or (total is not None and seen >= total):
            return Page(records, None, watermark=watermark)
        after = last_rowid(self, records, cursor)
        if cursor.get("upto") is not None and after > int(cursor["upto"]):
            raise ProtocolError(
                f"stream {self.name}: GET {self.resource} answered id {after} for ids up to {cursor['upto']}: "
                "the server ignores (t.rowid:<=:...) filters; set partitions: 1 for this source"
            )
        following: Cursor = {"after": after, "since": cursor.get("since")}
        if cursor.get("upto") is not None:
            following["upto"] = cursor["upto"]
        if total is not None:
            following |= {"total": total, "seen": seen}
        if len(records) < self.settings.page_size:
            following["probe"] = True
        return Page(records, following, watermark=watermark)


# Dolibarr's rowid is a signed 64-bit integer; a larger "highest id" is a bad answer, not a range.
MAX_ROWID = 2**63 - 1


def id_ranges(after: int, highest: int, parts: int, page_size: int) -> list[tuple[int, int | None]]:
    """``(after, upto]`` ranges of equal width covering every id after ``after``, the last open-ended
    (rows added above ``highest`` during the scan land in it); each at least a page wide."""
    parts = max(1, min(parts, (highest - after) // max(page_size, 1)))
    bounds = [after + (highest - after) * n // parts for n in range(parts)]
    return [*itertools.pairwise(bounds), (bounds[-1], None)]


def last_rowid(stream: DolibarrListStream, records: list[object], cursor: Cursor) -> int:
    """The keyset position after a page: its last readable id (the engine checks it moved forward)."""
    last = next((rowid for rowid in map(functools.partial(_rowid, stream), reversed(records)) if rowid), None)
    if last is None:
        raise ProtocolError(f"GET {stream.resource}: no record of the page after id {cursor['after']} has an id")
    return last


def _rowid(stream: DolibarrListStream, record: object) -> int | None:
    # Only the end of a page is read: its ids are decoded again, all of them, when it is staged.
    with contextlib.suppress(RecordRejected, ValueError):
        source_id = stream.source_id(record)
        if source_id.isdigit():
            return int(source_id)
    return None


class ThirdpartiesStream(DolibarrListStream):
    name = "thirdparties"
    entity = "customer"
    resource = "thirdparties"


class ProductsStream(DolibarrListStream):
    name = "products"
    entity = "product"
    resource = "products"


class OrdersStream(DolibarrListStream):
    name = "orders"
    entity = "order"
    resource = "orders"
    # The weekly sweep matters twice here: an order's JSON also changes without its tms (line
    # descriptions, product fields copied in, §1.9).


class UsersStream(DolibarrListStream):
    name = "users"
    entity = "user"
    resource = "users"
    counted = False
