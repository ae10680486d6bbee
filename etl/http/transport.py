"""The one place an aiohttp ClientSession is made, and the rate-limited calls that run the retry policy.

A client gives :meth:`HttpTransport.call` a :class:`~etl.http.response.Request` (or a function
building one per attempt), its pure classifier, and whether the call is safe to repeat. The
transport sends, reads the whole body, turns wire failures into verdicts itself, and lets
:class:`~etl.http.retry.RetryPolicy` decide what happens next.

A wire failure is *without effect* only when the request provably never left: the
connection was refused, the name did not resolve, TLS failed, or connecting timed out.
A reset or timeout once the request was on its way may have reached the server.

Two answers are judged here, before any classifier, because they concern the wire, not a
protocol:

- **Redirects are not followed.** aiohttp would carry every header (``DOLAPIKEY``) to the
  target, and on a 307/308 the body too (passwords, CRYPTO keys, ``authinfo``); the target's
  answer would then be trusted as the source's. A 301, 302, 303, 307 or 308 fails the call
  with :class:`~etl.http.errors.Redirected` naming the (sanitised) Location; a 304 keeps its
  protocol meaning and reaches the classifier. With ``follow_redirects: same_host`` up to
  :data:`MAX_REDIRECTS` redirects within the request's origin (scheme, host and port all
  identical) are followed: 307/308 repeat the method and body, as they require; 301/302/303
  turn a request other than GET/HEAD into a GET without a body, as browsers do (RFC 9110
  §15.4), so a body is only ever re-sent where the server asked for exactly that. A redirect
  leaving the origin fails as under ``never``. A 301/302/303 not followed, in answer to a call
  not safe to repeat (a POST create), is :class:`~etl.http.errors.OutcomeUnknown`: the server
  may have acted first.
- **Bodies are bounded.** ``max_response_bytes`` counts bytes after decompression (aiohttp
  decodes as it reads, in bounded steps), read in chunks so no more than about the limit is
  held; a larger declared Content-Length fails before reading. Either is a
  :class:`~etl.http.errors.ResponseTooLarge`, not retried: the server would send it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import aiohttp
from aiolimiter import AsyncLimiter

from etl.http.errors import Redirected, ResponseTooLarge, SourceError, TransportError, Verdict, retry, verdict_of
from etl.http.response import RawResponse, Request
from etl.http.retry import Attempt, CallStats, RetryPolicy
from etl.redaction import REDACTOR, mask_values, sanitize_url
from etl.settings import SourceSettings

Classifier = Callable[[RawResponse], Verdict]
RequestBuilder = Request | Callable[[], Request]
# Raised before a single byte of the request was written.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
READ_CHUNK = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SHOWN_LOCATION = 300  # characters of a Location kept in a message


def policy_of(settings: SourceSettings) -> RetryPolicy:
    """The source's retry policy, from its settings."""
    return RetryPolicy(
        max_attempts=settings.max_attempts,
        backoff_initial=settings.backoff_initial,
        backoff_max=settings.backoff_max,
        retry_after_max=settings.retry_after_max,
        call_budget=settings.call_budget,
    )


def make_session(settings: SourceSettings) -> aiohttp.ClientSession:
    """The HTTP session of one source: its own connection limit and timeouts."""
    timeouts = settings.timeouts
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.concurrency, limit_per_host=settings.concurrency),
        timeout=aiohttp.ClientTimeout(total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.read),
        raise_for_status=False,
    )


def wire_failure(request: Request, exc: BaseException) -> Verdict:
    """The verdict of a request that got no answer; only the class name is kept (aiohttp
    messages can echo the URL, query string included)."""
    sent = not isinstance(exc, _NOT_SENT)
    where = f"{request.method} {request.path}: {type(exc).__name__}"
    return retry(TransportError, where + ("" if sent else " (not sent)"), without_effect=not sent)


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of ``url``, default ports made explicit; ``None`` when it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def shown_location(target: str, secrets: list[str]) -> str:
    """A redirect target fit for a message: password masked, query left out (a Location may echo the
    request's session id or ``authinfo``, and the origin and path are what an operator needs)."""
    try:
        parts = urlsplit(target)
    except ValueError:
        return "an unreadable Location"
    shown = sanitize_url(urlunsplit(parts._replace(query="", fragment="")), REDACTOR.names)
    # Masked as decoded: a secret may arrive percent-encoded, any of its characters (%64emo = demo).
    shown = mask_values(unquote(shown) + ("?..." if parts.query else ""), secrets)
    return shown[:_SHOWN_LOCATION] + ("..." if len(shown) > _SHOWN_LOCATION else "")


def followed(request: Request, status: int, target: str) -> Request:
    """The request a same-origin redirect asks for: the target carries its own query; 307/308 keep
    method and body, 301/302/303 become a bodiless GET (a GET or HEAD stays itself)."""
    if status in (307, 308) or request.method.upper() in ("GET", "HEAD"):
        return replace(request, url=target, params=None)
    return replace(request, method="GET", url=target, params=None, data=None, json=None)


def redirect_verdict(request: Request, error: Redirected) -> Verdict:
    """A redirect not followed fails the call; but a 301/302/303 to a request other than GET/HEAD may
    come after the server acted (a 303 says it did), so a call not safe to repeat must look first."""
    if error.status in (301, 302, 303) and request.method.upper() not in ("GET", "HEAD"):
        # A retry verdict capped at one attempt: a safe call raises the redirect at once, an unsafe one
        # (with no proof the server refused it) becomes OutcomeUnknown in the retry policy.
        return Verdict("retry", error=Redirected, message=str(error), status=error.status, max_attempts=1)
    return verdict_of(error)


async def read_bounded(response: aiohttp.ClientResponse, limit: int, request: Request) -> bytes:
    """The decoded body, refused as soon as it grows past ``limit`` bytes (or announces more)."""
    where = f"{request.method} {request.path}: HTTP {response.status}"
    advice = f"over max_response_bytes ({limit:,} bytes after decompression)"
    declared = response.content_length
    if declared is not None and declared > limit:
        raise ResponseTooLarge(f"{where} announces {declared:,} bytes, {advice}", status=response.status)
    body = bytearray()
    async for chunk in response.content.iter_chunked(READ_CHUNK):
        body += chunk
        if len(body) > limit:
            raise ResponseTooLarge(f"{where} body is {advice}", status=response.status)
    return bytes(body)


class HttpTransport:
    """Bounded, rate-limited requests to one source, retried by the source's policy."""

    def __init__(self, settings: SourceSettings, session: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self.policy = policy_of(settings)
        self.stats = CallStats()
        self._session = session
        self._owns_session = session is None
        self._limiter = AsyncLimiter(settings.rate_limit, 1.0)
        self._slots = asyncio.Semaphore(settings.concurrency)

    async def __aenter__(self) -> HttpTransport:
        if self._session is None:
            self._session = make_session(self.settings)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, request: Request) -> RawResponse:
        """One request: waits for a rate-limit token and a slot, reads the whole body.

        Raises the wire's own exception, or :class:`Redirected` / :class:`ResponseTooLarge`;
        :meth:`exchange` turns either into a verdict."""
        assert self._session is not None, "use `async with HttpTransport(...)`"
        async with self._slots:
            for _ in range(MAX_REDIRECTS + 1):
                await self._limiter.acquire()  # a followed redirect is one more request to the source
                answer = await self._send_once(request)
                if isinstance(answer, RawResponse):
                    return answer
                request = answer
        raise Redirected(f"{request.method} {request.path}: more than {MAX_REDIRECTS} redirects")

    async def _send_once(self, request: Request) -> RawResponse | Request:
        """One request on the wire, never followed: the answer, or the next request of an allowed redirect."""
        assert self._session is not None
        self.stats.requests += 1
        async with self._session.request(
            request.method,
            request.url,
            params=request.params,
            data=request.data,
            json=request.json,
            headers=dict(request.headers),
            allow_redirects=False,
        ) as response:
            if 300 <= response.status < 400 and response.status != 304:
                return self._redirected(request, response.status, response.headers.get("Location"))
            body = await read_bounded(response, self.settings.max_response_bytes, request)
            return RawResponse(response.status, dict(response.headers), body)

    def _redirected(self, request: Request, status: int, location: str | None) -> Request:
        """The request a redirect leads to, when the source allows it; otherwise :class:`Redirected`."""
        where = f"{request.method} {request.path}: HTTP {status}"
        try:
            target = urljoin(request.url, location.strip()) if status in REDIRECTS and location else ""
        except ValueError:  # e.g. an unclosed IPv6 bracket
            target = ""
        if not target:
            raise Redirected(f"{where} redirect without a usable Location; redirects are not followed", status=status)
        shown = shown_location(target, self.settings.secret_values())
        here = origin(request.url)
        if self.settings.follow_redirects == "same_host" and here is not None and origin(target) == here:
            return followed(request, status, target)
        advice = (
            "it leaves the source's origin; only same-origin redirects are followed"
            if self.settings.follow_redirects == "same_host"
            else "point base_url at the final address, or set follow_redirects: same_host for one within "
            "the same scheme, host and port"
        )
        raise Redirected(f"{where} redirect to {shown} not followed ({advice})", status=status)

    def exchange(self, build: RequestBuilder, classify: Classifier) -> Attempt:
        """One attempt: build the request, send it, classify the answer (or the wire failure)."""

        async def attempt() -> Verdict:
            request = build() if callable(build) else build
            try:
                response = await self.send(request)
            except Redirected as exc:
                return redirect_verdict(request, exc)
            except SourceError as exc:  # an oversized body: judged by the transport itself
                return verdict_of(exc)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                return wire_failure(request, exc)
            return classify(response)

        return attempt

    async def call(
        self,
        build: RequestBuilder,
        classify: Classifier,
        *,
        what: str,
        safe: bool,
        renew: Callable[[], Awaitable[None]] | None = None,
    ) -> Any:
        """Send until the classifier's verdict is final; see :mod:`etl.http.retry` for the rules."""
        return await self.attempts(self.exchange(build, classify), what=what, safe=safe, renew=renew)

    async def attempts(
        self,
        attempt: Attempt,
        *,
        what: str,
        safe: bool,
        renew: Callable[[], Awaitable[None]] | None = None,
    ) -> Any:
        """Run any attempt (HTTP or not, e.g. a vendor library call) under the source's policy."""
        return await self.policy.run(attempt, what=what, safe=safe, renew=renew, stats=self.stats)
