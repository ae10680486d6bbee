"""The one place an aiohttp ClientSession is made, and the rate-limited calls that run the retry policy.

A client gives :meth:`HttpTransport.call` a :class:`~etl.http.response.Request` (or a function
building one per attempt), its pure classifier, and whether the call is safe to repeat. The
transport sends, reads the whole body, turns wire failures into verdicts itself, and lets
:class:`~etl.http.retry.RetryPolicy` decide what happens next.

A wire failure is *without effect* only when the request provably never left: the
connection was refused, the name did not resolve, TLS failed, or connecting timed out.
A reset or timeout once the request was on its way may have reached the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiolimiter import AsyncLimiter

from etl.http.errors import TransportError, Verdict, retry
from etl.http.response import RawResponse, Request
from etl.http.retry import Attempt, CallStats, RetryPolicy
from etl.settings import SourceSettings

Classifier = Callable[[RawResponse], Verdict]
RequestBuilder = Request | Callable[[], Request]
# Raised before a single byte of the request was written.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


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

        Raises the wire's own exception; :meth:`exchange` turns it into a verdict."""
        assert self._session is not None, "use `async with HttpTransport(...)`"
        async with self._slots:
            await self._limiter.acquire()
            self.stats.requests += 1
            async with self._session.request(
                request.method,
                request.url,
                params=request.params,
                data=request.data,
                json=request.json,
                headers=dict(request.headers),
            ) as response:
                body = await response.read()
                return RawResponse(response.status, dict(response.headers), body)

    def exchange(self, build: RequestBuilder, classify: Classifier) -> Attempt:
        """One attempt: build the request, send it, classify the answer (or the wire failure)."""

        async def attempt() -> Verdict:
            request = build() if callable(build) else build
            try:
                response = await self.send(request)
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
