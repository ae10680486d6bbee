"""The fault proxy in front of the simulators: each generic fault's shape, and the flaky profile end to end."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from etl.simulators.faults import GENERIC_KINDS, FaultPlan, describe_fired, fault_middleware


async def _items(request: web.Request) -> web.Response:
    return web.json_response({"items": [{"id": str(i), "label": f"item {i}"} for i in range(50)]})


@asynccontextmanager
async def behind_proxy(plan: FaultPlan) -> AsyncIterator[str]:
    """Serve a small JSON app behind ``fault_middleware(plan)``; yield its /items URL."""
    app = web.Application()
    app.router.add_route("*", "/items", _items)
    app.middlewares.insert(0, fault_middleware(plan))
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("/items"))
    finally:
        await server.close()


def only(kind: str, **settings: float) -> FaultPlan:
    """A plan on which ``kind`` fires on every request and nothing else does."""
    return FaultPlan("none", seed=1, rates={kind: 1.0}, **settings)


async def test_proxy_429_carries_retry_after_and_an_nginx_html_page() -> None:
    """A proxy 429 has a Retry-After header and nginx's HTML error page, not the application's JSON."""
    plan = only("proxy_429", retry_after_seconds=7)
    async with behind_proxy(plan) as url, aiohttp.ClientSession() as session, session.get(url) as response:
        body = await response.text()
        assert response.status == 429
        assert response.headers["Retry-After"] == "7"
        assert response.content_type == "text/html"
        assert "<title>429 Too Many Requests</title>" in body
        assert "<center>nginx</center>" in body
    assert plan.fired == {"proxy_429": 1}


async def test_proxy_5xx_is_an_nginx_html_page() -> None:
    """Proxy 5xx answers are 502/503/504 with an HTML body naming the status, served as text/html."""
    plan = only("proxy_5xx")
    statuses = set()
    async with behind_proxy(plan) as url, aiohttp.ClientSession() as session:
        for _ in range(30):
            async with session.get(url) as response:
                body = await response.text()
                statuses.add(response.status)
                assert response.content_type == "text/html"
                assert body.startswith("<html>")
                assert f"<h1>{response.status} " in body
                assert response.headers["Server"] == "nginx"
    assert statuses == {502, 503, 504}


async def test_reset_reaches_a_get_client_despite_aiohttps_own_retry() -> None:
    """One reset drops two requests, so a GET (which aiohttp retries once) still raises a connection error."""
    plan = only("reset")
    async with behind_proxy(plan) as url, aiohttp.ClientSession() as session:
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            async with session.get(url) as response:
                await response.read()
        plan.rates["reset"] = 0.0
        async with session.get(url) as response:
            assert response.status == 200
    assert plan.fired == {"reset": 2}


async def test_reset_drops_a_post_without_any_response() -> None:
    """A reset on a non-idempotent request surfaces at once: the socket closes with no status line."""
    plan = only("reset", reset_burst=1)
    async with behind_proxy(plan) as url, aiohttp.ClientSession() as session:
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            async with session.post(url, data=b"{}") as response:
                await response.read()
    assert plan.fired == {"reset": 1}


async def test_truncated_body_gives_a_payload_error() -> None:
    """A truncated response keeps its status and Content-Length but the body stops halfway."""
    plan = only("truncated")
    async with behind_proxy(plan) as url, aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        announced = int(response.headers["Content-Length"])
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert announced > 1000
    assert plan.fired == {"truncated": 1}


async def test_latency_and_slow_page_delay_the_answer() -> None:
    """Latency and slow_page sleep their configured time and then let the application answer."""
    for kind, field in (("latency", "latency_seconds"), ("slow_page", "slow_page_seconds")):
        plan = only(kind, **{field: 0.15})
        async with behind_proxy(plan) as url, aiohttp.ClientSession() as session:
            started = time.perf_counter()
            async with session.get(url) as response:
                assert len((await response.json())["items"]) == 50
            assert time.perf_counter() - started >= 0.15
        assert plan.fired == {kind: 1}


async def test_one_disruptive_fault_per_request_and_fired_counts_it() -> None:
    """When several disruptive kinds hit at once only the first in order reaches the client and is counted."""
    plan = FaultPlan("none", rates={"proxy_5xx": 1.0, "proxy_429": 1.0, "truncated": 1.0})
    async with behind_proxy(plan) as url, aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status in (502, 503, 504)
    assert plan.fired == {"proxy_5xx": 1}
    assert plan.describe() == "proxy_5xx=1"
    assert describe_fired({"x": plan, "y": FaultPlan()}) == "x: proxy_5xx=1\ny: no faults fired"


async def test_every_request_draws_each_generic_kind_once() -> None:
    """Every request consumes one draw per generic kind, so the stream position depends only on the request count."""
    plan = FaultPlan("none", seed=3)
    reference = FaultPlan("none", seed=3)
    async with behind_proxy(plan) as url, aiohttp.ClientSession() as session:
        for _ in range(5):
            async with session.get(url) as response:
                assert response.status == 200
    for _ in range(5 * len(GENERIC_KINDS)):
        reference.draw("latency")
    assert plan.choice(range(10**9)) == reference.choice(range(10**9))
    assert plan.fired == {}
