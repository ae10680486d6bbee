"""A fast Dolibarr list server for benchmarks: the REST shape the miclinik connector reads, nothing else.

Serves ``GET /api/index.php/status``, ``/thirdparties`` and ``/orders`` as a Dolibarr 23 (NEW) does
(tests/fixtures/dolibarr; protocols.md §1): ``DOLAPIKEY`` checked (401 with the recorded messages),
``limit`` (0: all), ``page``, ``sortfield=t.rowid``, ``sortorder=ASC|DESC``, ``sqlfilters`` of
``(t.rowid:>:N)``, ``(t.rowid:<=:N)`` (and ``>=``, ``<``, ``=``) and ``(t.tms:>=:'...')`` criteria
joined by ``and`` (a tms criterion is accepted and every row qualifies), and ``pagination_data=true``
(``{"data": [...], "pagination": {"total", "page", "page_count", "limit"}}``, total counting the
rows the filter matches). An empty third-party list is 404 "No third parties found" (recorded, NEW
too); an empty order list is ``[]``. Anything else is answered 400 or 501 rather than guessed at.

Pages are cut from :mod:`bench.replay_records` (no JSON encoding per request), so the server
costs a few µs per record and is not what a benchmark measures. ``--delay-ms 50 --slots 4`` makes
it a slow PHP server with 4 workers: each request, whatever it asks, holds one of 4 slots for
50 ms, and the others wait for a slot.

    python -m bench.replay_server --records 100000 --key K [--layout compact] [--delay-ms 50 --slots 4]

prints one JSON line (``port``, ``peak_rss_mb``, ...) once it listens, then serves until SIGTERM or until
the process that started it is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from bench.replay_records import LAYOUTS, Catalog, Layout
from bench.replay_resources import RESOURCES
from bench.workers import peak_rss_mb

API = "/api/index.php"
JSON_TYPE = "application/json; charset=utf-8"
RESTLER_HEADERS = {
    "Cache-Control": "no-cache, must-revalidate",
    "X-Powered-By": "Luracast Restler v3.1.0",
    "Content-Language": "en",
    "Content-Type": JSON_TYPE,
}
REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 503: "Service Unavailable"}
NO_KEY = (
    "Failed to login to API. Neither parameter 'HTTP_DOLAPIKEY' nor 'Authentication: Bearer' found on HTTP "
    "header (and no parameter DOLAPIKEY in URL)."
)
BAD_KEY = "Error user not valid (not found with api key or bad status or bad validity dates) (conf->entity=1)"
API_NOT_FOUND = "API not found (failed to include API file)"
_CRITERION = re.compile(r"\(\s*t\.(rowid|tms)\s*:\s*(<=|>=|<|>|=)\s*:\s*(\d+|'[^']*')\s*\)", re.IGNORECASE)
_GLUE = re.compile(r"[\s()]*(?:and[\s()]+)*", re.IGNORECASE)
_STAGES = {
    "call": (["get", "route", "negotiate", "authenticate", "validate"], ["call", "message"]),
    "authenticate": (["get", "route", "negotiate"], ["authenticate", "message"]),
}
UNKNOWN = "unknown_api"  # the route's name


class RestError(Exception):
    """An error Restler answers as ``{"error": {"code", "message"}, "debug": ...}`` (no debug in production)."""

    def __init__(self, status: int, message: str, source: str = "api.class.php:0", stage: str = "call") -> None:
        super().__init__(message)
        self.status, self.message, self.source, self.stage = status, message, source, stage

    def response(self, layout: Layout) -> web.Response:
        body: dict[str, object] = {"error": {"code": self.status, "message": f"{REASONS[self.status]}: {self.message}"}}
        if layout.pretty:  # pretty output is the non-production profile, which adds debug
            success, failure = _STAGES[self.stage]
            stages = {"success": success, "failure": failure}
            body["debug"] = {"source": f"{self.source} at {self.stage} stage", "stages": stages}
        headers = RESTLER_HEADERS | ({"WWW-Authenticate": ""} if self.status == 401 else {})
        return web.Response(status=self.status, body=layout.encode(body), headers=headers)


@dataclass
class ServerOptions:
    """The key the server accepts and how slow it is (no delay: as fast as it can)."""

    key: str
    delay: float = 0.0
    slots: asyncio.Semaphore | None = None


LAYOUT = web.AppKey("layout", Layout)
CATALOGS = web.AppKey("catalogs", dict)
SERVER = web.AppKey("server", ServerOptions)


@dataclass(frozen=True)
class ListQuery:
    """One list request's parameters: the id range ``after < id <= upto``, paging and order."""

    after: int = 0
    upto: int | None = None
    limit: int = 100
    page: int = 0
    descending: bool = False
    pagination_data: bool = False


def parse_list_query(query: Mapping[str, str]) -> ListQuery:
    """The list parameters the connector sends; anything the replay does not serve is a 400 naming it."""
    try:
        limit, page = int(query.get("limit") or 100), max(0, int(query.get("page") or 0))
    except ValueError:
        raise RestError(400, "limit and page must be integers") from None
    if (query.get("sortfield") or "t.rowid").lower() not in ("t.rowid", "rowid"):
        raise RestError(400, f"the replay server sorts by t.rowid only, not {query['sortfield']!r}")
    order = (query.get("sortorder") or "ASC").upper()
    if order not in ("ASC", "DESC"):
        raise RestError(400, f"sortorder {order!r}")
    after, upto = _keyset(query.get("sqlfilters", "").strip())
    return ListQuery(
        after=after,
        upto=upto,
        limit=max(0, limit),
        page=page,
        descending=order == "DESC",
        pagination_data=query.get("pagination_data", "").lower() in ("1", "true"),
    )


def _keyset(text: str) -> tuple[int, int | None]:
    """The id range ``after < id <= upto`` a filter of rowid and tms criteria joined by ``and`` keeps."""
    if text.count("(") != text.count(")"):
        raise RestError(400, f"Error when validating parameter sqlfilters -> Wrong balance of parenthesis in "
                             f"sqlfilters={text}", source="api_thirdparties.class.php:216")  # fmt: skip
    after, upto = 0, None
    for field, operator, value in _CRITERION.findall(text):
        if field.lower() == "tms":
            continue
        if value.startswith("'"):
            raise RestError(400, f"t.rowid compared with a text: {value}")
        number = int(value)
        low, high = {">": (number, None), ">=": (number - 1, None), "<=": (None, number), "<": (None, number - 1),
                     "=": (number - 1, number)}[operator]  # fmt: skip
        after = max(after, low) if low is not None else after
        upto = high if high is not None and (upto is None or high < upto) else upto
    if not _GLUE.fullmatch(_CRITERION.sub(" ", text)):
        raise RestError(400, f"the replay server serves t.rowid and t.tms criteria joined by and, not {text!r}")
    return after, upto


def list_page(catalog: Catalog, query: ListQuery) -> bytes:
    """The answer to one list query: its records, as a bare array or inside the pagination envelope."""
    start, stop = catalog.span(query.after, query.upto)
    total, skip = stop - start, query.page * query.limit
    if query.descending:
        last = stop - skip
        first = max(start, last - query.limit) if query.limit else start
    else:
        first = start + skip
        last = min(stop, first + query.limit) if query.limit else stop
    if last <= first and catalog.resource.empty_404:
        raise RestError(404, catalog.resource.empty_404, source=catalog.resource.source)
    level = 2 if query.pagination_data else 1
    items = catalog.render(first, last, descending=query.descending, level=level)
    if not query.pagination_data:
        return catalog.layout.array(items, 1)
    page_count = math.ceil(total / query.limit) if query.limit else int(total > 0)
    pagination = {"total": total, "page": query.page, "page_count": page_count, "limit": query.limit}
    return catalog.layout.envelope(items, pagination)


async def list_records(request: web.Request) -> web.Response:
    catalog = request.app[CATALOGS][request.match_info["resource"]]
    return web.Response(body=list_page(catalog, parse_list_query(request.query)), headers=RESTLER_HEADERS)


async def status(request: web.Request) -> web.Response:
    """As recorded: version and the server clock (``timestamp_now_utc``, read by the client at open)."""
    now = int(time.time())
    layout = request.app[LAYOUT]
    success = {
        "code": 200, "dolibarr_version": "23.0.0-beta", "access_locked": "0",
        "environment": "non-production" if layout.pretty else "production", "timestamp_now_utc": now,
        "timestamp_php_tz": "UTC", "date_tz": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }  # fmt: skip
    return web.Response(body=layout.encode({"success": success}), headers=RESTLER_HEADERS)


@web.middleware
async def dolibarr(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A PHP worker per request (held ``delay`` s when slow), the key check, Restler's error bodies."""
    options = request.app[SERVER]
    async with options.slots or contextlib.nullcontext():
        if options.delay:
            await asyncio.sleep(options.delay)
        if request.match_info.route.name == UNKNOWN:  # answered by index.php before Restler checks the key
            return await handler(request)
        try:
            key = request.headers.get("DOLAPIKEY")
            if not key:
                raise RestError(401, NO_KEY, source="api_access.class.php:317", stage="authenticate")
            if key != options.key:  # Dolibarr sleeps a second first; no benchmark sends a wrong key on purpose
                raise RestError(401, BAD_KEY, source="api_access.class.php:242", stage="authenticate")
            return await handler(request)
        except RestError as error:
            return error.response(request.app[LAYOUT])


async def unknown_api(request: web.Request) -> web.Response:
    """index.php's own plain-text 501 for an API it has no class for (recorded)."""
    headers = {"X-Powered-By": "PHP/8.2.36"}
    return web.Response(status=501, text=API_NOT_FOUND, content_type="text/html", headers=headers)


def make_app(catalogs: dict[str, Catalog], layout: Layout, options: ServerOptions) -> web.Application:
    app = web.Application(middlewares=[dolibarr])
    app[CATALOGS], app[LAYOUT], app[SERVER] = catalogs, layout, options
    app.router.add_get(f"{API}/status", status)
    app.router.add_get(API + "/{resource:" + "|".join(catalogs) + "}", list_records)
    app.router.add_route("*", "/{tail:.*}", unknown_api, name=UNKNOWN)
    return app


async def serve(catalogs: dict[str, Catalog], layout: Layout, options: ServerOptions, port: int) -> None:
    """Listen, say where, and serve until SIGTERM or until the parent process is gone."""
    runner = web.AppRunner(make_app(catalogs, layout, options), access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    await web.SockSite(runner, sock, backlog=512).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    records = {name: len(catalog.ids) for name, catalog in catalogs.items()}
    ready = {"port": sock.getsockname()[1], "pid": os.getpid(), "records": records, "peak_rss_mb": peak_rss_mb()}
    print(json.dumps(ready), flush=True)
    parent = os.getppid()
    try:
        while not stop.is_set() and os.getppid() == parent:  # orphaned when the bench was killed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, required=True, help="third parties, ids 1..N")
    parser.add_argument("--orders", type=int, help="orders, ids 1..N (default: as many as --records)")
    parser.add_argument("--key", required=True, help="the DOLAPIKEY accepted")
    parser.add_argument("--layout", choices=LAYOUTS, default="pretty")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="each request holds a slot this long")
    parser.add_argument("--slots", type=int, default=0, help="requests served at once (0: no limit)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    layout = Layout(args.layout)
    counts = {"thirdparties": args.records, "orders": args.orders if args.orders is not None else args.records}
    catalogs = {name: Catalog(RESOURCES[name], count, layout) for name, count in counts.items()}

    async def run() -> None:
        slots = asyncio.Semaphore(args.slots) if args.slots else None
        await serve(catalogs, layout, ServerOptions(args.key, args.delay_ms / 1000, slots), args.port)

    asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
