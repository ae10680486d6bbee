"""Seeded fault injection shared by the four simulators.

A :class:`FaultPlan` answers one question per request and fault kind: "does
this fault happen now?". Draws come from one seeded stream per plan, so a
sequential client sees the same faults in the same order on every run.

Generic kinds are applied by :func:`fault_middleware` in front of every app,
shaped like the proxy or network in front of a real server. System-specific
kinds (a revoked Dolibarr key, a BILLmanager session expiring, a MikroBILL
batch item failing) are rolled by the simulator that owns the shape.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web

GENERIC_KINDS = ("latency", "proxy_5xx", "proxy_429", "reset", "truncated", "slow_page")
SPECIFIC_KINDS = ("revoked_key", "db_error", "session_expiry", "partial_batch", "busy", "not_active")
KINDS = GENERIC_KINDS + SPECIFIC_KINDS

# "flaky" is a few percent of everything: at 1 % a kind is expected ~10 times in
# 1,000 requests, so the chance that one never shows is about e**-10.
PROFILES: dict[str, dict[str, float]] = {
    "none": {},
    "flaky": {kind: 0.01 for kind in KINDS} | {"latency": 0.03},
    "hostile": {kind: 0.06 for kind in KINDS} | {"latency": 0.15, "reset": 0.04},
}

# The order in which the middleware draws for every request. Fixed, and every
# kind is drawn on every request, so the stream stays aligned whatever fires.
MIDDLEWARE_ROLL_ORDER = ("latency", "slow_page", "proxy_5xx", "proxy_429", "reset", "truncated")

_T = TypeVar("_T")


@dataclass
class FaultPlan:
    """Which faults fire, at what rate, under which seed.

    ``fired`` counts the faults that actually reached a client; a generic kind
    that was drawn but pre-empted by another one in the same request is not
    counted. ``reset_burst`` is how many consecutive requests one ``reset``
    drops: aiohttp (>= 3.10) silently retries an idempotent request once after
    a dropped connection, so a single dropped request would never surface to a
    GET client; a burst of two is what such a client sees as one connection
    error (like a backend restart behind the proxy).
    """

    profile: str = "none"
    seed: int = 0
    rates: dict[str, float] = field(default_factory=dict)
    latency_seconds: float = 0.05
    slow_page_seconds: float = 0.5
    retry_after_seconds: int = 1
    reset_burst: int = 2
    fired: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown fault profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        self.rates = PROFILES[self.profile] | self.rates
        self._random = random.Random(self.seed)
        self._resets_pending = 0

    def start_reset_burst(self) -> None:
        """A reset fired: the next ``reset_burst - 1`` requests are dropped too."""
        self._resets_pending = max(0, self.reset_burst - 1)

    def continue_reset_burst(self) -> bool:
        """Whether this request falls inside a reset burst (and so is dropped before any draw)."""
        if self._resets_pending <= 0:
            return False
        self._resets_pending -= 1
        return True

    def roll(self, kind: str) -> bool:
        """Draw once for ``kind``; always consumes one draw so sequences stay aligned."""
        hit = self.draw(kind)
        if hit:
            self.record(kind)
        return hit

    def draw(self, kind: str) -> bool:
        """Draw once for ``kind`` without counting it as fired (the caller may pre-empt it)."""
        return self._random.random() < self.rates.get(kind, 0.0)

    def record(self, kind: str) -> None:
        """Count one occurrence of ``kind`` that reached the client."""
        self.fired[kind] = self.fired.get(kind, 0) + 1

    def choice(self, options: Sequence[_T]) -> _T:
        """Pick one of ``options`` from the plan's stream (one draw)."""
        return options[int(self._random.random() * len(options))]

    def describe(self) -> str:
        """One line naming every kind that fired and how often, e.g. ``latency=31 reset=8``."""
        if not self.fired:
            return "no faults fired"
        return " ".join(f"{kind}={self.fired[kind]}" for kind in sorted(self.fired, key=_kind_order))


def _kind_order(kind: str) -> tuple[int, str]:
    return (KINDS.index(kind) if kind in KINDS else len(KINDS), kind)


def describe_fired(plans: dict[str, FaultPlan]) -> str:
    """One line per system: which fault kinds fired there and how often."""
    return "\n".join(f"{system}: {plan.describe()}" for system, plan in plans.items())


# -- the proxy in front of every simulator ----------------------------------

_REASONS = {
    429: "Too Many Requests",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def nginx_error_page(status: int) -> bytes:
    """The HTML body nginx sends for an error status it generates itself."""
    title = f"{status} {_REASONS[status]}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def proxy_error(status: int, *, retry_after: int | None = None) -> web.Response:
    """An error generated by the reverse proxy, not by the application behind it."""
    headers = {"Server": "nginx"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return web.Response(status=status, body=nginx_error_page(status), content_type="text/html", headers=headers)


def fault_middleware(plan: FaultPlan) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware that plays the network and reverse proxy in front of a simulator.

    Per request it draws, in :data:`MIDDLEWARE_ROLL_ORDER`, every generic kind, then applies them:

    - ``latency`` / ``slow_page``: sleep ``plan.latency_seconds`` / ``plan.slow_page_seconds`` first;
    - at most one disruptive fault, first hit wins:
      ``reset`` drops the connection without a response (the client sees ServerDisconnectedError or
      ClientOSError; see ``FaultPlan.reset_burst``), ``proxy_5xx`` answers 502/503/504 with nginx's
      HTML error page, ``proxy_429`` answers 429 with ``Retry-After`` and nginx's HTML page,
      ``truncated`` lets the application answer, then sends only half of the body announced by
      ``Content-Length`` and closes the connection (the client sees a payload error).

    429 and 5xx are proxy-level faults: none of Dolibarr, MikroBILL, Microbizz or BILLmanager
    rate-limits or answers with an HTML 5xx page itself, so these always come from nginx in front.
    The middleware must be the outermost one (``app.middlewares.insert(0, ...)``).
    """

    @web.middleware
    async def apply_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        if plan.continue_reset_burst():
            return _drop_connection(request, plan)
        hits = {kind: plan.draw(kind) for kind in MIDDLEWARE_ROLL_ORDER}
        for kind, seconds in (("latency", plan.latency_seconds), ("slow_page", plan.slow_page_seconds)):
            if hits[kind]:
                plan.record(kind)
                await asyncio.sleep(seconds)
        if hits["reset"]:
            plan.start_reset_burst()
            return _drop_connection(request, plan)
        if hits["proxy_5xx"]:
            plan.record("proxy_5xx")
            return proxy_error(plan.choice((502, 503, 504)))
        if hits["proxy_429"]:
            plan.record("proxy_429")
            return proxy_error(429, retry_after=plan.retry_after_seconds)
        response = await handler(request)
        if hits["truncated"] and _can_truncate(response):
            plan.record("truncated")
            return await _send_truncated(request, response)
        return response

    return apply_faults


def _drop_connection(request: web.Request, plan: FaultPlan) -> web.Response:
    """Close the socket with nothing written; the returned response never reaches the wire."""
    plan.record("reset")
    if request.transport is not None:
        request.transport.abort()
    # aiohttp needs a response object to finish the request; with the transport gone it writes nothing.
    return web.Response(status=502)


def _can_truncate(response: web.StreamResponse) -> bool:
    return (
        isinstance(response, web.Response)
        and not response.prepared
        and isinstance(response.body, bytes)
        and len(response.body) >= 2
        and response.compression is False
    )


async def _send_truncated(request: web.Request, response: web.Response) -> web.StreamResponse:
    """Announce the full body, send half of it, and close the connection."""
    body = response.body
    assert isinstance(body, bytes)
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "transfer-encoding")}
    cut = web.StreamResponse(status=response.status, reason=response.reason, headers=headers)
    cut.cookies.update(response.cookies)
    cut.content_length = len(body)
    await cut.prepare(request)
    await cut.write(body[: len(body) // 2])
    if request.transport is not None:
        # close(), unlike abort(), flushes the half body already buffered before the FIN.
        request.transport.close()
    return cut
