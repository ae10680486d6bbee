"""The reference loop: how fast plain aiohttp reads a Dolibarr list with the ETL's requests in flight.

The loop is fixed here, so the ratio ETL / reference means the same from one run to the next. It
splits the id range as the partitioned ETL does: one ``sortorder=DESC&limit=1`` probe for the
highest id, ``concurrency`` equal-width ranges ``after < id <= upto``, each at least a page wide,
the last one open-ended (ids created during the scan land there). Each range pages by keyset, ``(t.rowid:>:after) and
(t.rowid:<=:upto)``, one request in flight per range, decodes each page with the standard
library's ``json.loads`` (what ``response.json()`` does) to find the next ``after``, and
discards it. A short page or a 404 "none found" ends a range. Nothing is hashed or stored.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp


def id_ranges(highest: int, parts: int, page_size: int) -> list[tuple[int, int | None]]:
    """Up to ``parts`` ranges ``(after, upto)`` of equal width up to ``highest``, each at least a page
    wide, the last with no upper bound."""
    parts = max(1, min(parts, highest // max(page_size, 1)))
    bounds = [highest * i // parts for i in range(parts)]
    return [(low, high) for low, high in zip(bounds, [*bounds[1:], None], strict=True)]


class ListReader:
    """GETs of one Dolibarr list, the way the connector words them."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, resource: str, page_size: int) -> None:
        self.session, self.url, self.page_size = session, f"{base_url}/{resource}", page_size
        self.requests = 0

    async def get(self, params: dict[str, Any]) -> list[Any]:
        """One page's records; an empty list for a 404 "none found" (third parties answer that way)."""
        self.requests += 1
        async with self.session.get(self.url, params=params) as response:
            body = await response.read()
        if response.status == 404:
            return []
        if response.status != 200:
            raise RuntimeError(f"GET {self.url}: HTTP {response.status}: {body[:200]!r}")
        return json.loads(body)

    async def highest_id(self) -> int:
        page = await self.get({"limit": 1, "page": 0, "sortfield": "t.rowid", "sortorder": "DESC",
                               "sqlfilters": "(t.rowid:>:0)"})  # fmt: skip
        return int(page[0]["id"]) if page else 0

    async def read_range(self, after: int, upto: int | None) -> int:
        """Page through ``after < id <= upto``; the number of records read."""
        records = 0
        while True:
            sqlfilters = f"(t.rowid:>:{after})" + (f" and (t.rowid:<=:{upto})" if upto is not None else "")
            params = {"limit": self.page_size, "page": 0, "sortfield": "t.rowid", "sortorder": "ASC",
                      "sqlfilters": sqlfilters}  # fmt: skip
            page = await self.get(params)
            records += len(page)
            if len(page) < self.page_size:
                return records
            after = int(page[-1]["id"])


async def read_list(
    base_url: str, key: str, page_size: int, concurrency: int, resource: str = "thirdparties"
) -> dict[str, Any]:
    """Read the whole list as described above; records/s from the probe to the last page."""
    headers = {"DOLAPIKEY": key, "Accept": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        reader = ListReader(session, base_url, resource, page_size)
        started = time.perf_counter()
        ranges = id_ranges(await reader.highest_id(), concurrency, page_size)
        counts = await asyncio.gather(*(reader.read_range(after, upto) for after, upto in ranges))
        seconds = time.perf_counter() - started
    records = sum(counts)
    return {"records": records, "seconds": seconds, "rate": records / seconds, "requests": reader.requests,
            "partitions": len(ranges)}  # fmt: skip
