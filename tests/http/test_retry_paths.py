"""Every retrying path of every source, on real sockets: a persistent fault costs exactly N requests for the page.

Each case puts a :class:`~tests.http.FaultGate` in front of a real simulator. The gate logs the
requests for one page server-side and faults them: all of them (persistent), or the first N-2
(the fault clears at attempt N-1). The simulator's own request log is checked against the gate's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web

from etl.http.errors import (
    AuthenticationError,
    ProxyPageError,
    ServerError,
    SessionExpired,
    SourceBusy,
    SourceError,
)
from etl.http.transport import HttpTransport
from etl.simulators import billmanager, miclinik, microbizz, mikrobill
from etl.simulators.faults import FaultPlan
from etl.simulators.world import World
from etl.sources.base import SourceClient
from etl.sources.billmanager.client import BillmanagerClient
from etl.sources.billmanager.doc import rows
from etl.sources.miclinik.client import MiclinikClient
from etl.sources.microbizz.client import MicrobizzClient
from etl.sources.mikrobill.client import MikrobillClient
from tests.http import Fault, FaultGate, before, proxy_page, serve, settings_for, simulator_fault

WORLD = World(seed=7, scale=30)
SINCE = {"changedate": "1970-01-01", "changetime": "00:00:00"}
CUSTOMERS = {"command": "GetCustomersByLastChange", **SINCE}
PRODUCTS = {"command": "GetProductsByLastChange", **SINCE}
PROPERTIES = ("AutorizeInfo.Name", "BillingInfo.Money")


def form(body: bytes) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(body.decode()).items()}


def envelope_commands(body: bytes) -> list[str]:
    raw = form(body).get("json")
    return [command.get("command") for command in json.loads(raw)["commands"]] if raw else []


def process_args(body: bytes) -> tuple[str | None, Any]:
    """The ``path`` and ``args`` of a MikroBILL ``POST /process`` body."""
    sent = json.loads(body or b"{}")
    return sent.get("path"), sent.get("args")


async def read_clients(client: MikrobillClient) -> Any:
    ids = await client.listed_ids("API.GetClients")
    return await client.read("API.Client", [f"{cid}.{prop}" for cid in ids[:3] for prop in PROPERTIES])


@dataclass(frozen=True)
class Page:
    """One page of one source: its server, its client, how to read it and how to recognise its requests."""

    kind: str
    create_app: Callable[..., web.Application]
    state_key: Any
    base_path: str
    client: type[SourceClient]
    matches: Callable[[web.Request, bytes], bool]
    read: Callable[[Any], Awaitable[Any]]
    records: Callable[[Any], int]
    expected: int
    logged: Callable[[Any], int]
    simulator_options: Callable[[], Any] = lambda: None
    options: dict[str, Any] = field(default_factory=dict)


MICLINIK = Page(
    "miclinik",
    miclinik.create_app,
    miclinik.STATE,
    "/api/index.php",
    MiclinikClient,
    lambda request, body: request.method == "GET" and request.path == "/api/index.php/products",
    lambda client: client.get_list("products", {"limit": 10, "page": 0, "sortfield": "t.rowid", "sortorder": "ASC"}),
    len,
    10,
    lambda state: sum(entry["path"] == "/api/index.php/products" for entry in state.request_log),
    # No second of brute-force delay per refused key, and a revoked_key fault rejects only its own request.
    lambda: miclinik.MiclinikOptions(bad_key_delay=0, revoked_burst=1),
    # 401 confirmations above every N used here, so the policy's max_attempts is what ends the call.
    {"auth_confirmations": 10},
)
MIKROBILL = Page(
    "mikrobill",
    mikrobill.create_app,
    mikrobill.STATE,
    "",
    MikrobillClient,
    lambda request, body: request.path == "/process" and process_args(body)[0] == "API.Client",
    read_clients,
    lambda result: sum(outcome.missing is None and outcome.value is not None for outcome in result.outcomes),
    6,
    lambda state: sum(entry["what"] == "API.Client" for entry in state.request_log),
)
BILLMANAGER = Page(
    "billmanager",
    billmanager.create_app,
    billmanager.STATE,
    "/billmgr",
    BillmanagerClient,
    lambda request, body: form(body).get("func") == "account",
    lambda client: client.call("account", {"p_num": 1, "p_cnt": 10}),
    lambda doc: len(rows(doc)),
    10,
    lambda state: sum(entry["func"] == "account" for entry in state.request_log),
)
MICROBIZZ = Page(
    "microbizz",
    microbizz.create_app,
    microbizz.STATE,
    "/api/endpoint.php",
    MicrobizzClient,
    lambda request, body: envelope_commands(body) == ["GetCustomersByLastChange"],
    lambda client: client.run(dict(CUSTOMERS)),
    lambda answered: len(answered[0]["customers"]),
    15,
    lambda state: sum(entry["commands"] == ["GetCustomersByLastChange"] for entry in state.request_log),
)
# An envelope of two reads: a busy answer to either command retries the whole envelope.
MICROBIZZ_PAIR = Page(
    "microbizz",
    microbizz.create_app,
    microbizz.STATE,
    "/api/endpoint.php",
    MicrobizzClient,
    lambda request, body: envelope_commands(body) == ["GetCustomersByLastChange", "GetProductsByLastChange"],
    lambda client: client.execute([dict(CUSTOMERS), dict(PRODUCTS)], what="customers+products"),
    lambda answer: len(answer.results[0]["customers"]) + len(answer.results[1]["products"]),
    15 + 24,
    lambda state: sum(len(entry["commands"]) == 2 for entry in state.request_log),
)
PAGES = {"miclinik": MICLINIK, "mikrobill": MIKROBILL, "billmanager": BILLMANAGER, "microbizz": MICROBIZZ}


def drop_sessions(state: Any) -> None:
    state.sessions.clear()


@dataclass(frozen=True)
class Case:
    """A retrying path: the page, the fault put on its requests, the error a persistent fault ends in."""

    page: Page
    fault: Callable[[FaultPlan, Any], Fault]
    error: type[SourceError]
    reaches_app: bool = True  # False: the proxy answers, the simulator never logs the request


def proxy_502(plan: FaultPlan, state: Any) -> Fault:
    return proxy_page(502)


CASES = {
    "miclinik-5xx-proxy": Case(MICLINIK, proxy_502, ProxyPageError, reaches_app=False),
    "miclinik-5xx-database": Case(MICLINIK, lambda plan, state: simulator_fault(plan, "db_error"), ServerError),
    "mikrobill-5xx": Case(MIKROBILL, proxy_502, ServerError, reaches_app=False),
    "billmanager-5xx": Case(BILLMANAGER, proxy_502, ServerError, reaches_app=False),
    "microbizz-5xx": Case(MICROBIZZ, proxy_502, ServerError, reaches_app=False),
    "miclinik-401": Case(MICLINIK, lambda plan, state: simulator_fault(plan, "revoked_key"), AuthenticationError),
    "mikrobill-busy-items": Case(MIKROBILL, lambda plan, state: simulator_fault(plan, "partial_batch"), SourceBusy),
    "mikrobill-busy-call": Case(MIKROBILL, lambda plan, state: simulator_fault(plan, "busy"), SourceBusy),
    "mikrobill-session": Case(MIKROBILL, lambda plan, state: before(lambda: drop_sessions(state)), SessionExpired),
    "billmanager-session": Case(
        BILLMANAGER, lambda plan, state: simulator_fault(plan, "session_expiry"), SessionExpired
    ),
    "microbizz-busy-envelope": Case(MICROBIZZ, lambda plan, state: simulator_fault(plan, "busy"), SourceBusy),
    "microbizz-busy-command": Case(
        MICROBIZZ_PAIR, lambda plan, state: simulator_fault(plan, "partial_batch"), SourceBusy
    ),
}


@dataclass
class Rig:
    """A page's simulator behind a gate, an opened client of the page's source, and how long the read took."""

    gate: FaultGate
    state: Any
    client: Any
    transport: HttpTransport
    elapsed: float = 0.0


async def run_page(
    page: Page, fault: Callable[[FaultPlan, Any], Fault] | None, faulty: int | None, n: int, **fields: Any
) -> tuple[Rig, Any]:
    """Serve the page behind a gate, open a client with ``max_attempts=n``, read the page: (rig, result or error)."""
    plan = FaultPlan("none", seed=1)
    app = page.create_app(WORLD, faults=plan, options=page.simulator_options())
    state = app[page.state_key]
    gate = FaultGate(page.matches, fault(plan, state), faulty) if fault else FaultGate(page.matches, proxy_page(502), 0)
    async with serve(app, gate) as origin:
        source = settings_for(page.kind, origin + page.base_path, n, options=page.options, **fields)
        async with HttpTransport(source) as transport:
            client = page.client(source, transport)
            await client.open()
            rig = Rig(gate, state, client, transport)
            started = time.monotonic()
            try:
                result = await page.read(client)
            except SourceError as error:
                result = error
            rig.elapsed = time.monotonic() - started
            return rig, result


@pytest.mark.parametrize("page", PAGES.values(), ids=PAGES.keys())
async def test_a_page_without_faults_costs_one_request(page: Page) -> None:
    """Without a fault each page is one request in both the gate's and the simulator's log (the counting control)."""
    rig, result = await run_page(page, None, None, 4)
    assert page.records(result) == page.expected
    assert rig.gate.requests == 1 == page.logged(rig.state)


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_persistent_fault_costs_exactly_n_requests_then_raises(case: Case, n: int) -> None:
    """Under a persistent fault the page is asked exactly max_attempts=N times, then the path's error is raised."""
    rig, result = await run_page(case.page, case.fault, None, n)
    assert isinstance(result, case.error), f"{type(result).__name__}: {result}"
    assert f"after {n} attempts" in str(result)
    assert rig.gate.requests == n
    assert case.page.logged(rig.state) == (n if case.reaches_app else 0)
    assert rig.transport.stats.retries == n - 1, "no retry outside the page (open, renewals)"


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_fault_clearing_at_attempt_n_minus_1_reads_the_page(case: Case, n: int) -> None:
    """When the fault clears at attempt N-1, the page is read whole with exactly N-1 requests."""
    rig, result = await run_page(case.page, case.fault, n - 2, n)
    assert not isinstance(result, SourceError), f"{type(result).__name__}: {result}"
    assert case.page.records(result) == case.page.expected
    assert rig.gate.requests == n - 1
    assert case.page.logged(rig.state) == (n - 1 if case.reaches_app else 1)


@pytest.mark.parametrize("clears", [False, True], ids=["persistent", "clearing"])
async def test_busy_batch_items_are_asked_again_alone(clears: bool) -> None:
    """After a batch answered one item busy, each further attempt of the call asks only the busy item."""
    n = 4
    rig, result = await run_page(MIKROBILL, CASES["mikrobill-busy-items"].fault, n - 2 if clears else None, n)
    asked = [len(process_args(body)[1]) for body in rig.gate.log]
    assert asked == [6] + [1] * (len(asked) - 1) and len(asked) == (n - 1 if clears else n)
    if clears:
        assert result.calls == n - 1, "ReadResult.calls counts every attempt of the batch"


@pytest.mark.parametrize("clears", [False, True], ids=["persistent", "clearing"])
async def test_busy_whole_call_rereads_the_whole_batch(clears: bool) -> None:
    """A batch call answered with one busy envelope is sent again whole, every path of the page each time."""
    n = 4
    rig, _ = await run_page(MIKROBILL, CASES["mikrobill-busy-call"].fault, n - 2 if clears else None, n)
    assert [len(process_args(body)[1]) for body in rig.gate.log] == [6] * (n - 1 if clears else n)


@pytest.mark.parametrize("case_id", ["mikrobill-session", "billmanager-session"])
@pytest.mark.parametrize("clears", [False, True], ids=["persistent", "clearing"])
async def test_every_refused_session_is_renewed_once_before_the_next_attempt(case_id: str, clears: bool) -> None:
    """Each refused session costs exactly one new login between attempts, none after the last attempt."""
    n = 4
    case = CASES[case_id]
    rig, _ = await run_page(case.page, case.fault, n - 2 if clears else None, n)
    if case.page is MIKROBILL:
        logins = sum(entry["path"] == "/connect" for entry in rig.state.request_log)
    else:
        logins = sum(entry["func"] == "auth" for entry in rig.state.request_log)
        assert rig.client.logins == logins
    # One login at open(), then one per refused attempt that is followed by another attempt.
    assert logins == rig.gate.requests == (n - 1 if clears else n)


@pytest.mark.parametrize("page", PAGES.values(), ids=PAGES.keys())
async def test_retry_after_beyond_retry_after_max_waits_retry_after_max(page: Page) -> None:
    """A 503 with Retry-After: 3600 under retry_after_max=0.2 makes the client wait about 0.2 s, then the page is read."""
    rig, result = await run_page(page, lambda plan, state: proxy_page(503, retry_after=3600), 1, 3, retry_after_max=0.2)
    assert page.records(result) == page.expected and rig.gate.requests == 2
    # Backoff alone would be at most 0.002 s: the wait is the capped Retry-After (slack for a slow machine).
    assert 0.19 <= rig.elapsed < 2.0, rig.elapsed


async def test_retry_after_is_honoured() -> None:
    """A 503 with Retry-After: 1 makes the client wait about one second before asking the page again."""
    rig, result = await run_page(MICLINIK, lambda plan, state: proxy_page(503, retry_after=1), 1, 3)
    assert len(result) == 10 and rig.gate.requests == 2
    assert 0.95 <= rig.elapsed < 3.0, rig.elapsed
