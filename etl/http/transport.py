"""The one place an aiohttp ClientSession is made, and the retrying, rate-limited call around it.

A client hands :meth:`HttpTransport.call` a coroutine factory that does one request and
decodes it (raising from :mod:`etl.http.errors`); the transport retries it as the error
class says, honouring Retry-After, and counts what happened.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import orjson
import structlog
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from etl.http.errors import (
    ProxyPageError,
    RetryableError,
    SessionExpired,
    TransportError,
    parse_retry_after,
)
from etl.settings import SourceSettings

T = TypeVar("T")
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RawResponse:
    """A fully read HTTP response: pure values for the protocol code to judge."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON, or :class:`ProxyPageError` when a proxy or error page answered instead."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return self._lenient_json()

    def _lenient_json(self) -> Any:
        # orjson refuses lone surrogates ("\ud800") that json accepts; such records must reach
        # the staging step to be rejected one by one rather than failing their whole page.
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            snippet = " ".join(self.text()[:80].split())
            raise ProxyPageError(
                f"expected JSON, got HTTP {self.status} {self.content_type or 'no content type'}: {snippet!r}",
                status=self.status,
                retry_after=parse_retry_after(self.headers.get("Retry-After")),
            ) from None


@dataclass
class CallStats:
    """What happened on the wire, for progress displays and run counts."""

    requests: int = 0
    retries: int = 0
    retry_kinds: dict[str, int] = field(default_factory=dict)

    def retried(self, kind: str) -> None:
        self.retries += 1
        self.retry_kinds[kind] = self.retry_kinds.get(kind, 0) + 1


def make_session(settings: SourceSettings) -> aiohttp.ClientSession:
    """The HTTP session of one source: its own connection limit and timeouts."""
    timeouts = settings.timeouts
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.concurrency, limit_per_host=settings.concurrency),
        timeout=aiohttp.ClientTimeout(total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.read),
        raise_for_status=False,
    )


class HttpTransport:
    """Bounded, rate-limited requests to one source, with retries by error class."""

    def __init__(self, settings: SourceSettings, session: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self.stats = CallStats()
        self._session = session
        self._owns_session = session is None
        self._limiter = AsyncLimiter(settings.rate_limit, 1.0)
        self._slots = asyncio.Semaphore(settings.concurrency)
        self.on_session_expired: Callable[[], Awaitable[None]] | None = None

    async def __aenter__(self) -> HttpTransport:
        if self._session is None:
            self._session = make_session(self.settings)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, url: str, **kwargs: Any) -> RawResponse:
        """One attempt: waits for a rate-limit token and a slot, reads the whole body."""
        assert self._session is not None, "use `async with HttpTransport(...)`"
        async with self._slots:
            await self._limiter.acquire()
            self.stats.requests += 1
            try:
                async with self._session.request(method, url, **kwargs) as response:
                    body = await response.read()
                    return RawResponse(response.status, dict(response.headers), body)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                # Only the class name: aiohttp messages can echo the URL, query string included.
                raise TransportError(f"{method} {_path_of(url)}: {type(exc).__name__}") from None

    async def call(self, attempt: Callable[[], Awaitable[T]], *, what: str) -> T:
        """Run ``attempt`` until it succeeds, a fatal error occurs or attempts run out."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(RetryableError),
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=self._wait,
            before_sleep=lambda state: self._before_retry(state, what),
            reraise=True,
        )
        async for attempt_state in retrying:
            with attempt_state:
                try:
                    return await attempt()
                except SessionExpired:
                    # Log in again before the retry; a failed login is fatal and ends the call.
                    if self.on_session_expired is not None:
                        await self.on_session_expired()
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = wait_random_exponential(multiplier=self.settings.backoff_initial, max=self.settings.backoff_max)
        if isinstance(exc, SessionExpired):
            return 0.0
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(retry_after, max(self.settings.backoff_max, 1.0))
        return backoff(state)

    def _before_retry(self, state: RetryCallState, what: str) -> None:
        exc = state.outcome.exception() if state.outcome else None
        kind = getattr(exc, "kind", type(exc).__name__)
        self.stats.retried(kind)
        log.warning("retrying", call=what, attempt=state.attempt_number, kind=kind, error=str(exc))


def _path_of(url: str) -> str:
    return url.split("?", 1)[0]
