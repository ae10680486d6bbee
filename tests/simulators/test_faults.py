"""The fault proxy in front of the simulators: each generic fault's shape, and the flaky profile end to end."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from etl.simulators import registry
from etl.simulators.faults import GENERIC_KINDS, FaultPlan, describe_fired, fault_middleware
from etl.simulators.miclinik import MiclinikOptions
from etl.simulators.mikrobill import SESSION_HEADER, Code
from etl.simulators.registry import BUILTIN as SYSTEMS
from etl.simulators.serve import RunningSimulator, running_simulators, serve_forever
from etl.simulators.world import World


async def _items(request: web.Request) -> web.Response:
    return web.json_response({"items": [{"id": str(i), "label": f"item {i}"} for i in range(50)]})


@asynccontextmanager
async def behind_proxy(plan: FaultPlan) -> AsyncIterator[str]:
    """Serve a small JSON app behind ``fault_middleware(plan)``; yield its /items URL."""
    app = web.Application()
    app.router.add_route("*", "/items", _items)
    app.middlewares.insert(0, fault_middleware(plan))
    async with TestServer(app) as server:
        yield str(server.make_url("/items"))


def only(kind: str, **settings: float) -> FaultPlan:
    """A plan on which ``kind`` fires on every request and nothing else does."""
    return FaultPlan("none", seed=1, rates={kind: 1.0}, **settings)


async def test_proxy_429_carries_retry_after_and_an_nginx_html_page() -> None:
    """A proxy 429 has a Retry-After header and nginx's HTML error page, not the application's JSON."""
    plan = only("proxy_429", retry_after_seconds=7)
    async with behind_proxy(plan) as url, aiohttp.ClientSession() as session, session.get(url) as response:
        body = await response.text()
        assert (response.status, response.headers["Retry-After"], response.content_type) == (429, "7", "text/html")
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
    plan, reference = FaultPlan("none", seed=3), FaultPlan("none", seed=3)
    async with behind_proxy(plan) as url, aiohttp.ClientSession() as session:
        for _ in range(5):
            async with session.get(url) as response:
                assert response.status == 200
    for _ in range(5 * len(GENERIC_KINDS)):
        reference.draw("latency")
    assert plan.choice(range(10**9)) == reference.choice(range(10**9))
    assert plan.fired == {}


# -- the flaky profile against the real simulators ---------------------------

REQUESTS = 1000
REPLAYED = 300  # the replay compares a prefix: the whole file must stay under 20 s on one core
SEED = 7
LATENCY = 0.01
SLOW_PAGE = 0.05


@dataclass
class Outcome:
    """What a plain client saw for one request: status or exception class, the fault it reads as, the time it took."""

    seen: str
    kind: str | None
    seconds: float


def proxy_kind(response: aiohttp.ClientResponse, body: bytes) -> str | None:
    """The generic fault a response reads as, judged only by what is on the wire."""
    if response.content_type != "text/html" or b"<center>nginx</center>" not in body:
        return None
    if response.status == 429 and response.headers.get("Retry-After", "").isdigit():
        return "proxy_429"
    return "proxy_5xx" if response.status in (502, 503, 504) else None


Call = tuple[str, str, dict[str, Any]]  # method, URL, keyword arguments of ClientSession.request


class Probe:
    """A sequential client of one simulator: every ``send`` is exactly one HTTP request."""

    system: ClassVar[str]
    specific: ClassVar[set[str]]  # the system-specific fault kinds its answers show

    def __init__(self, session: aiohttp.ClientSession, sim: RunningSimulator) -> None:
        self.session = session
        self.sim = sim

    def request(self) -> Call:
        """Method, URL and request keyword arguments of the next request."""
        raise NotImplementedError

    def judge(self, response: aiohttp.ClientResponse, body: bytes) -> str | None:
        """The system-specific fault this answer shows, if any; may update the probe's session state."""
        raise NotImplementedError

    async def send(self) -> Outcome:
        """Send one request and classify what came back."""
        method, url, kwargs = self.request()
        started = time.perf_counter()
        try:
            async with self.session.request(method, url, **kwargs) as response:
                body = await response.read()
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            return Outcome(type(exc).__name__, "reset", time.perf_counter() - started)
        except aiohttp.ClientPayloadError as exc:
            return Outcome(type(exc).__name__, "truncated", time.perf_counter() - started)
        seconds = time.perf_counter() - started
        kind = proxy_kind(response, body) or self.judge(response, body)
        return Outcome(str(response.status), kind, seconds)


class MiclinikProbe(Probe):
    """Pages through products five at a time (pages 0-3) with the DOLAPIKEY header."""

    system, specific = "miclinik", {"revoked_key", "db_error", "not_active"}
    page = -1

    def request(self) -> Call:
        self.page = (self.page + 1) % 4
        query = {
            "params": {"limit": "5", "page": str(self.page)},
            "headers": {"DOLAPIKEY": self.sim.credentials["api_key"]},
        }
        return "GET", f"{self.sim.base_url}/products", query

    def judge(self, response: aiohttp.ClientResponse, body: bytes) -> str | None:
        if response.status == 401:
            return "revoked_key"
        if response.status == 503 and b"Error when retrieve" in body:
            return "db_error"
        if response.status == 200 and b"must be enabled" in body:
            return "not_active"
        assert response.status == 200, body[:300]
        return None


class MikrobillProbe(Probe):
    """Connects once, then reads two values of one client per batch call."""

    system, specific = "mikrobill", {"busy", "partial_batch"}
    token: str | None = None

    def request(self) -> Call:
        if self.token is None:
            keys = ("login", "password", "crypto_key_1", "crypto_key_2")
            return "POST", f"{self.sim.base_url}/connect", {"json": {key: self.sim.credentials[key] for key in keys}}
        client = next(row.source_id for row in self.sim.state.truth() if row.entity == "customer")
        body = {"path": "API.Client", "args": [f"{client}.BillingInfo.Money", f"{client}.AutorizeInfo.Name"]}
        return "POST", f"{self.sim.base_url}/process", {"json": body, "headers": {SESSION_HEADER: self.token}}

    def judge(self, response: aiohttp.ClientResponse, body: bytes) -> str | None:
        assert response.status == 200, body[:300]
        answer = json.loads(body)
        if self.token is None:
            if answer["code"] == 0:
                self.token = answer["return"]
            return "busy" if answer["code"] == Code.CORE_BUSY else None
        if isinstance(answer, dict):
            assert answer["code"] == Code.CORE_BUSY, answer
            return "busy"
        failed = [item for item in answer if item["code"] != 0]
        assert all(item["code"] == Code.CORE_BUSY for item in failed), answer
        return "partial_batch" if failed else None


class MicrobizzProbe(Probe):
    """Sends an Echo plus one GetCustomerByID per envelope, so a partial batch is visible."""

    system, specific = "microbizz", {"busy", "partial_batch"}

    def request(self) -> Call:
        envelope: dict[str, Any] = {key: self.sim.credentials[key] for key in ("apikey", "username", "password")}
        envelope["contract"] = int(self.sim.credentials["contract"])
        envelope["commands"] = [{"command": "Echo", "text": "ping"}, {"command": "GetCustomerByID", "customerid": 1}]
        return "POST", self.sim.base_url, {"data": {"json": json.dumps(envelope)}}

    def judge(self, response: aiohttp.ClientResponse, body: bytes) -> str | None:
        assert response.status == 200, body[:300]
        answer = json.loads(body)
        if answer["status"] == 0:
            return "busy"
        failed = [result for result in answer["results"] if result["status"] == 0]
        return "partial_batch" if failed else None


class BillmanagerProbe(Probe):
    """Logs in with func=auth, then lists five accounts with auth=<sid>; logs in again when the session is gone."""

    system, specific = "billmanager", {"session_expiry"}
    sid: str | None = None

    def request(self) -> Call:
        creds = self.sim.credentials
        if self.sid is None:
            params = {"func": "auth", "out": "json", "username": creds["username"], "password": creds["password"]}
        else:
            params = {"func": "account", "out": "json", "auth": self.sid, "p_cnt": "5"}
        return "GET", self.sim.base_url, {"params": params}

    def judge(self, response: aiohttp.ClientResponse, body: bytes) -> str | None:
        assert response.status == 200, body[:300]
        doc = json.loads(body)["doc"]
        if self.sid is None:
            self.sid = doc["auth"]["$id"]
            return None
        if "error" in doc:
            self.sid = None
            return "session_expiry"
        return None


PROBES: dict[str, type[Probe]] = {probe.system: probe for probe in Probe.__subclasses__()}


async def observe(profile: str, seed: int, requests: int) -> tuple[dict[str, list[Outcome]], dict[str, FaultPlan]]:
    """Run one sequential probe per simulator (the four side by side) and collect what each client saw."""
    # Dolibarr sleeps a second before every 401 for a bad key; a revoked-key burst would cost a minute here.
    options = {"miclinik": MiclinikOptions(bad_key_delay=0.0)}
    async with running_simulators(
        SYSTEMS, world=World(SEED, 200), faults=profile, seed=seed, base_port=0, options=options
    ) as running:
        for sim in running:
            sim.plan.latency_seconds, sim.plan.slow_page_seconds = LATENCY, SLOW_PAGE

        async def drive(sim: RunningSimulator) -> list[Outcome]:
            async with aiohttp.ClientSession() as session:
                probe = PROBES[sim.system](session, sim)
                return [await probe.send() for _ in range(requests)]

        seen = await asyncio.gather(*(drive(sim) for sim in running))
        return dict(zip(SYSTEMS, seen, strict=True)), running.plans


async def test_flaky_profile_shows_every_fault_and_replays_it_under_the_same_seed() -> None:
    """Under "flaky", 1,000 plain sequential requests per simulator see every fault kind, and the same seed replays them."""
    first, plans = await observe("flaky", SEED, REQUESTS)
    for system, outcomes in first.items():
        plan = plans[system]
        kinds = Counter(outcome.kind for outcome in outcomes)
        assert {"reset", "truncated", "proxy_5xx", "proxy_429"} <= kinds.keys(), (system, plan.describe())
        assert PROBES[system].specific <= kinds.keys(), (system, plan.describe())
        for kind in ("truncated", "proxy_5xx", "proxy_429"):
            assert kinds[kind] == plan.fired[kind], (system, kind)
        assert 0 < kinds["reset"] <= plan.fired["reset"]
        assert plan.fired["slow_page"] >= 1 and plan.fired["latency"] >= 1, (system, plan.describe())
        assert sum(outcome.seconds >= SLOW_PAGE for outcome in outcomes) >= plan.fired["slow_page"]
        slept = plan.fired["latency"] * LATENCY + plan.fired["slow_page"] * SLOW_PAGE
        assert sum(outcome.seconds for outcome in outcomes) >= slept
        assert sum(outcome.kind is not None for outcome in outcomes) < REQUESTS * 0.15, system
    second, _ = await observe("flaky", SEED, REPLAYED)
    for system in SYSTEMS:
        replay = [(outcome.seen, outcome.kind) for outcome in second[system]]
        assert replay == [(outcome.seen, outcome.kind) for outcome in first[system][:REPLAYED]], system


async def test_another_seed_gives_another_sequence() -> None:
    """The fault sequence depends on the seed, so the replay check above is not comparing two constants."""
    one, _ = await observe("flaky", SEED, 150)
    other, _ = await observe("flaky", SEED + 100, 150)
    for system in SYSTEMS:
        assert [o.kind for o in one[system]] != [o.kind for o in other[system]], system


async def test_profile_none_gives_no_faults() -> None:
    """Under "none" every request succeeds and no fault is counted."""
    seen, plans = await observe("none", SEED, 150)
    for system, outcomes in seen.items():
        assert all(outcome.kind is None and outcome.seen == "200" for outcome in outcomes), system
        assert plans[system].fired == {}


async def test_running_simulators_serve_each_system_at_its_base_url_behind_its_plan() -> None:
    """Each system listens on its own port at the conventional base URL, with its live fault plan in front of the app."""
    async with running_simulators(world=World(SEED, 50), base_port=0) as running, aiohttp.ClientSession() as session:
        assert [sim.system for sim in running] == list(SYSTEMS)
        assert len({sim.port for sim in running}) == 4
        for sim in running:
            assert sim.base_url == f"http://127.0.0.1:{sim.port}{registry.get(sim.system).base_path}"
            assert (await PROBES[sim.system](session, sim).send()).kind is None
            logged = len(sim.state.request_log)
            assert logged == 1
            sim.plan.rates["proxy_429"] = 1.0
            assert (await PROBES[sim.system](session, sim).send()).kind == "proxy_429"
            assert len(sim.state.request_log) == logged


async def test_serve_forever_prints_the_table_and_stops() -> None:
    """``etl simulate`` prints system, URL and credentials for every system and returns once told to stop."""
    lines: list[str] = []
    stop = asyncio.Event()
    task = asyncio.create_task(serve_forever(world=None, base_port=0, write=lines.append, stop=stop))
    while not lines:
        await asyncio.sleep(0.01)
    table = lines[0].splitlines()
    assert table[0].split() == ["system", "url", "credentials"]
    for system, row in zip(SYSTEMS, table[2:], strict=True):
        name, url = row.split()[:2]
        assert name == system
        assert url.startswith("http://127.0.0.1:") and url.endswith(registry.get(system).base_path)
    assert "demo-dolibarr-key" in table[2] and "demo-billmgr-pass" in table[5]
    stop.set()
    await asyncio.wait_for(task, 5)
    assert lines[-1].splitlines() == [f"{system}: no faults fired" for system in SYSTEMS]
