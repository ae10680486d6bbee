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
        """Whether this page asks the server to count the list: a NEW server's first page of a scan."""
        return self.counted and self.settings.options.profile == "new" and not cursor["after"]

    def query(self, cursor: Cursor) -> dict[str, str | int]:
        filters = [f"(t.rowid:>:{int(cursor['after'])})"]
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
        following: Cursor = {"after": last_rowid(self, records, cursor), "since": cursor.get("since")}
        if total is not None:
            following |= {"total": total, "seen": seen}
        if len(records) < self.settings.page_size:
            following["probe"] = True
        return Page(records, following, watermark=watermark)


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
