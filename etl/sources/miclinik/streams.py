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

Incremental scans add ``(t.tms:>=:'<watermark>')``. Dolibarr reads ``tms`` back as
null, yet filtering on it works (recorded fixtures). The next watermark is the
server's own clock (GET /status) at the start of the scan minus an overlap window
(option ``tms_overlap_seconds``), so changes made while a scan runs are read again
next time rather than lost; re-reading them is harmless because staging diffs by hash.

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
    incremental = True
    ascending_ids = True
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

    def query(self, cursor: Cursor) -> dict[str, str | int]:
        filters = [f"(t.rowid:>:{int(cursor['after'])})"]
        if cursor.get("since"):
            filters.append(f"(t.tms:>=:'{cursor['since']}')")
        return {
            "limit": self.settings.page_size,
            "page": 0,
            "sortfield": "t.rowid",
            "sortorder": "ASC",
            "sqlfilters": " and ".join(filters),
        }

    async def fetch(self, cursor: Cursor) -> Page:
        # After a full page, a 404 "none found" may be a glitch of an OLD server: it is confirmed.
        records = await self.client.get_list(self.resource, self.query(cursor), confirm_empty=bool(cursor["after"]))
        watermark = self.next_watermark
        if len(records) < self.settings.page_size:
            return Page(records, None, watermark=watermark)
        return Page(records, {**cursor, "after": last_rowid(self, records, cursor)}, watermark=watermark)


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


class UsersStream(DolibarrListStream):
    name = "users"
    entity = "user"
    resource = "users"
