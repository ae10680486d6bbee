"""A scripted, recording HTTP server for tests: it answers what the test tells it to, and keeps
every byte any client sent it.

It stands where a misbehaving server, proxy or attacker would: a redirect to another host, a
body that never ends, a gzip bomb, a status line after a long pause. Real sockets, ephemeral
ports, nothing of the project imported (it is the server's side of the argument).

::

    async with HostileServer() as front, HostileServer() as elsewhere:
        front.route("*", "*", Proxy(simulator.base_url))       # behave, for a first good run
        front.route("GET", "/api/*", lambda seen: Answer(302, {"Location": elsewhere.url(seen.path_qs)}))
        ...                                                   # run the ETL against front.base_url
        assert elsewhere.connections == 0 and not elsewhere.wire

Routes are matched newest first, method and path as :func:`fnmatch.fnmatchcase` patterns
(``"*"`` matches anything), so a test re-routes between runs by adding a route. A route's
answer is an :class:`Answer`, a :class:`Proxy`, or a function of the :class:`Received`
request returning either. Unmatched requests get a 404.

Recording happens twice: ``received`` holds each parsed request (method, path, query, headers,
body), and ``wire`` every raw byte read from any connection, including bytes the HTTP parser
would refuse, because the public port is a plain TCP relay in front of the aiohttp app.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

# Hop-by-hop headers a proxy must not copy (RFC 9110 §7.6.1), plus those aiohttp sets itself.
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}


@dataclass(frozen=True)
class Received:
    """One request as the server parsed it."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def path_qs(self) -> str:
        """Path and query string, as on the request line."""
        return self.path + (f"?{self.query}" if self.query else "")

    def header(self, name: str) -> str:
        """A header's value, without regard to case ("" when absent)."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")


@dataclass(frozen=True)
class Answer:
    """What to send back.

    ``body``: bytes, str, or anything else as JSON; or an iterable of byte chunks, sent as they
    come (a body larger than memory). ``delay``: seconds before the status line. ``trickle``:
    (bytes per write, seconds between writes). ``gzip``: compress on the fly and say so.
    ``stall``: seconds to hold the connection open after the body, then hang up without ending the
    response (with a Content-Length larger than the body: a server that promises more than it sends).
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = b""
    delay: float = 0.0
    trickle: tuple[int, float] | None = None
    gzip: bool = False
    stall: float = 0.0


@dataclass(frozen=True)
class Proxy:
    """Forward the request to ``base_url`` (path and query kept, less ``strip_prefix``) and relay the
    answer unchanged."""

    base_url: str
    strip_prefix: str = ""


Handler = Answer | Proxy | Callable[[Received], "Answer | Proxy | Awaitable[Answer | Proxy]"]


def zeros(total: int, chunk: int = 1 << 20) -> Iterable[bytes]:
    """``total`` zero bytes in chunks, without holding them: with ``gzip=True`` a compression bomb
    (~1000:1) that costs the server only what the client reads."""
    block = bytes(chunk)
    full, rest = divmod(total, chunk)
    for _ in range(full):
        yield block
    if rest:
        yield block[:rest]


class HostileServer:
    """An HTTP server on an ephemeral port that answers from a table and records what it receives."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.received: list[Received] = []
        self.wire = bytearray()
        self.connections = 0
        self._routes: list[tuple[str, str, Handler]] = []
        self._relays: set[asyncio.Task[None]] = set()
        self._sockets: set[asyncio.StreamWriter] = set()

    def url(self, path: str = "") -> str:
        """An absolute URL on this server."""
        return f"http://{self.host}:{self.port}{path}"

    @property
    def base_url(self) -> str:
        return self.url()

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Answer requests matching ``method`` and ``path`` (fnmatch patterns) with ``handler``;
        newer routes win over older ones."""
        self._routes.insert(0, (method.upper(), path, handler))

    def forget(self) -> None:
        """Drop what was recorded so far (between the phases of a test)."""
        self.received.clear()
        self.wire.clear()
        self.connections = 0

    async def __aenter__(self) -> HostileServer:
        self._client = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._inner_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._front = await asyncio.start_server(self._relay, self.host, 0)
        self.port = self._front.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._front.close()
        # Closing the sockets ends every relay by itself (cancelled relays would be logged as errors).
        for sock in self._sockets:
            sock.close()
        if self._relays:
            await asyncio.wait(self._relays, timeout=2)
        await self._runner.cleanup()
        await self._client.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one connection to the app and back, keeping every byte the client sent."""
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        self._sockets.add(writer)
        try:
            inner_reader, inner_writer = await asyncio.open_connection("127.0.0.1", self._inner_port)
            self._sockets.add(inner_writer)
            await asyncio.gather(_pump(reader, inner_writer, self.wire), _pump(inner_reader, writer, None))
        finally:
            self._relays.discard(task)
            writer.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        seen = Received(
            request.method,
            request.path,
            request.query_string,
            tuple(request.headers.items()),
            await request.read(),
        )
        self.received.append(seen)
        handler = self._match(seen)
        if handler is None:
            return web.Response(status=404, text=f"no route for {seen.method} {seen.path}")
        answer = handler(seen) if callable(handler) else handler
        if isinstance(answer, Awaitable):
            answer = await answer
        if isinstance(answer, Proxy):
            return await self._forward(answer, seen)
        return await _send(request, answer)

    def _match(self, seen: Received) -> Handler | None:
        for method, path, handler in self._routes:
            if fnmatch.fnmatchcase(seen.method, method) and fnmatch.fnmatchcase(seen.path, path):
                return handler
        return None

    async def _forward(self, proxy: Proxy, seen: Received) -> web.Response:
        headers = {k: v for k, v in seen.headers if k.lower() not in _HOP_HEADERS}
        path = seen.path_qs.removeprefix(proxy.strip_prefix)
        async with self._client.request(
            seen.method, proxy.base_url + path, headers=headers, data=seen.body, allow_redirects=False
        ) as upstream:
            body = await upstream.read()
            kept = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
            return web.Response(status=upstream.status, headers=kept, body=body)


async def _pump(source: asyncio.StreamReader, target: asyncio.StreamWriter, record: bytearray | None) -> None:
    """Copy bytes until either side closes; then close ``target`` so the other direction ends too."""
    try:
        while not target.is_closing() and (data := await source.read(65536)):
            if record is not None:
                record += data
            target.write(data)
            await target.drain()
    except OSError:  # a reset or a refused write: the connection is over either way
        pass
    finally:
        target.close()


async def _send(request: web.Request, answer: Answer) -> web.StreamResponse:
    """Write ``answer`` as scripted: pause, headers, body (compressed, trickled), stall."""
    if answer.delay:
        await asyncio.sleep(answer.delay)
    response = web.StreamResponse(status=answer.status, headers=dict(answer.headers))
    chunks = _chunks(answer.body)
    if answer.gzip:
        response.headers["Content-Encoding"] = "gzip"
        chunks = _gzipped(chunks)
    if _is_json(answer.body):
        response.headers.setdefault("Content-Type", "application/json")
    with contextlib.suppress(ConnectionError):
        await response.prepare(request)
        for chunk in chunks:
            for piece in _pieces(chunk, answer.trickle):
                await response.write(piece)
                # Yield even untrickled: a client in this process must get to read (and to hang up on
                # a bomb) before the whole body is made; socket buffers alone would not stop us.
                await asyncio.sleep(answer.trickle[1] if answer.trickle else 0)
        if answer.stall:
            await asyncio.sleep(answer.stall)
            if request.transport is not None:  # then hang up, short of any length promised
                request.transport.close()
                return response
        await response.write_eof()
    return response


def _is_json(body: Any) -> bool:
    return not isinstance(body, bytes | bytearray | str) and not _is_stream(body)


def _is_stream(body: Any) -> bool:
    return isinstance(body, Iterable) and not isinstance(body, bytes | bytearray | str | Mapping | list | tuple)


def _chunks(body: Any) -> Iterable[bytes]:
    if isinstance(body, bytes | bytearray):
        return [bytes(body)]
    if isinstance(body, str):
        return [body.encode()]
    if _is_stream(body):
        return body
    return [json.dumps(body).encode()]


def _gzipped(chunks: Iterable[bytes]) -> Iterable[bytes]:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    for chunk in chunks:
        if out := packer.compress(chunk):
            yield out
    yield packer.flush()


def _pieces(chunk: bytes, trickle: tuple[int, float] | None) -> Iterable[bytes]:
    if not trickle:
        yield chunk
        return
    size = max(1, trickle[0])
    for start in range(0, len(chunk), size):
        yield chunk[start : start + size]
