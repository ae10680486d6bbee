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

Records reach staging undecoded (:mod:`etl.sources.rawjson`): each is the server's own JSON
text, hashed and stored as sent. Only the ids at the two ends of a page are read here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

from etl.http.errors import ProtocolError
from etl.sources.base import Cursor, Page, RecordRejected, Stream
from etl.sources.miclinik.client import MiclinikClient


class DolibarrListStream(Stream):
    """A Dolibarr list read in rowid order, optionally only rows modified since a watermark."""

    resource: ClassVar[str]
    incremental = True
    client: MiclinikClient

    def start(self, watermark: Cursor | None) -> Cursor:
        return {"after": 0, "since": watermark.get("tms") if watermark else None}

    def scan_watermark(self, watermark: Cursor | None) -> Cursor | None:
        overlap = float(self.settings.options.get("tms_overlap_seconds", 300))
        now = self.client.server_now or datetime.now(UTC)
        zone = ZoneInfo(str(self.settings.options.get("tms_timezone", "UTC")))
        # OLD servers refuse a ":" inside a filter value, so they get MySQL's compact datetime form.
        layout = "%Y%m%d%H%M%S" if self.settings.options.get("profile") == "old" else "%Y-%m-%d %H:%M:%S"
        return {"tms": (now - timedelta(seconds=overlap)).astimezone(zone).strftime(layout)}

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
        records, not_found = await self.client.get_list_answer(self.resource, self.query(cursor))
        calls = 1
        if not_found and cursor.get("after"):
            # A 404 "No x found" comes both at the true end and when a page glitches mid-scan (OLD
            # servers); after a full page it is asked once more before it ends the scan.
            for _ in range(int(self.settings.options.get("confirm_empty_pages", 1))):
                calls += 1
                records, not_found = await self.client.get_list_answer(self.resource, self.query(cursor))
                if records:
                    break
        if len(records) < self.settings.page_size:
            return Page(records, None, calls=calls)
        return Page(records, {**cursor, "after": last_rowid(self, records, cursor)}, calls=calls)


def last_rowid(stream: DolibarrListStream, records: list[object], cursor: Cursor) -> int:
    """The keyset position after a page (its last readable id: the page is in rowid order);
    refuses to stand still or go back (a server ignoring sqlfilters or sortfield)."""
    first, last = _first_rowid(stream, records), _first_rowid(stream, reversed(records))
    if last is None or last <= int(cursor["after"]) or first > last:
        raise ProtocolError(
            f"GET {stream.resource}: page after id {cursor['after']} did not move forward in rowid order; "
            "the server may be ignoring sqlfilters or sortfield"
        )
    return last


def _first_rowid(stream: DolibarrListStream, records: Iterable[object]) -> int | None:
    # Only the ends of a page are read: its ids are decoded again, all of them, when it is staged.
    for record in records:
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
