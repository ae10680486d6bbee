"""miclinik's own retry paths on real sockets: confirming an empty page, and creates that are not safe to repeat."""

from __future__ import annotations

import asyncio

import pytest

from etl.http.errors import AuthenticationError, OutcomeUnknown, TransportError
from etl.http.transport import HttpTransport
from etl.simulators import miclinik
from etl.simulators.faults import FaultPlan
from etl.simulators.world import World
from etl.sources.miclinik.client import MiclinikClient
from tests.http import FaultGate, closed_port, held, proxy_page, serve, settings_for, simulator_fault

WORLD = World(seed=7, scale=30)
BASE = "/api/index.php"
REF = "ETL-RETRY-1"
ORDER = {"limit": 10, "sortfield": "t.rowid", "sortorder": "ASC"}


def products_list(request, body: bytes) -> bool:
    return request.method == "GET" and request.path == f"{BASE}/products"


def products_create(request, body: bytes) -> bool:
    return request.method == "POST" and request.path == f"{BASE}/products"


def products_with_ref(state: miclinik.MiclinikState, ref: str) -> list[int]:
    return [row.rowid for row in state.store.products.values() if row.ref.lower() == ref.lower()]


async def read_list(n: int, page: int, *, faulty: int | None, confirm_empty_pages: int, confirm: bool = True):
    """Page ``page`` of products on an OLD server whose page-after-the-first 404 fault fires on the first ``faulty``."""
    plan = FaultPlan("none", seed=1)
    options = miclinik.MiclinikOptions(profile="OLD")
    app = miclinik.create_app(WORLD, faults=plan, options=options)
    gate = FaultGate(products_list, simulator_fault(plan, options.old_page_404_kind), faulty)
    async with serve(app, gate) as origin:
        source = settings_for(
            "miclinik", origin + BASE, n, options={"profile": "old", "confirm_empty_pages": confirm_empty_pages}
        )
        async with HttpTransport(source) as transport:
            client = MiclinikClient(source, transport)
            await client.open()
            records = await client.get_list("products", {**ORDER, "page": page}, confirm_empty=confirm)
    statuses = [entry["status"] for entry in app[miclinik.STATE].request_log if entry["path"] == f"{BASE}/products"]
    return records, gate, statuses


@pytest.mark.parametrize("n", [3, 4])
async def test_persistent_none_found_is_accepted_as_the_end_after_n_requests(n: int) -> None:
    """With options.confirm_empty_pages = N-1 (cap N, not below max_attempts=N) a page past the end answering 404
    "No product found" every time is asked exactly N times, then accepted as an empty page."""
    records, gate, statuses = await read_list(n, 50, faulty=0, confirm_empty_pages=n - 1)
    assert records == []
    assert gate.requests == n and statuses == [404] * n


async def test_none_found_confirmations_stop_at_confirm_empty_pages_plus_one() -> None:
    """With confirm_empty_pages=1 under max_attempts=4, "none found" is asked twice (the verdict's own cap)."""
    records, gate, _ = await read_list(4, 50, faulty=0, confirm_empty_pages=1)
    assert records == [] and gate.requests == 2


async def test_none_found_without_confirmation_is_the_end_at_once() -> None:
    """A list not asked to confirm its emptiness takes the first 404 "No product found" as no rows."""
    records, gate, _ = await read_list(4, 50, faulty=0, confirm_empty_pages=3, confirm=False)
    assert records == [] and gate.requests == 1


@pytest.mark.parametrize("n", [3, 4])
async def test_none_found_glitch_clearing_at_attempt_n_minus_1_reads_the_page(n: int) -> None:
    """A full page that an OLD server answers 404 "none found" N-2 times is read whole at request N-1."""
    records, gate, statuses = await read_list(n, 1, faulty=n - 2, confirm_empty_pages=n - 1)
    assert len(records) == 10
    assert gate.requests == n - 1 and statuses == [404] * (n - 2) + [200]


# -- creates: not safe to repeat ---------------------------------------------------------------------


async def test_create_timing_out_after_sending_is_not_retried_and_outcome_is_unknown() -> None:
    """A POST that reached the server but got no answer before the read timeout raises OutcomeUnknown after one
    request, and the server did create the product: sending it again would have made a duplicate."""
    release, finished = asyncio.Event(), asyncio.Event()
    app = miclinik.create_app(WORLD)
    gate = FaultGate(products_create, held(release, finished))
    async with serve(app, gate) as origin:
        timeouts = {"connect": 2, "read": 0.3, "total": 10}
        source = settings_for("miclinik", origin + BASE, 4, timeouts=timeouts)
        async with HttpTransport(source) as transport:
            client = MiclinikClient(source, transport)
            with pytest.raises(OutcomeUnknown, match="look the object up"):
                await client.create("products", {"ref": REF, "label": "Retry probe"})
            assert gate.requests == 1 and transport.stats.requests == 1
        release.set()
        await asyncio.wait_for(finished.wait(), 5)
    assert len(products_with_ref(app[miclinik.STATE], REF)) == 1


@pytest.mark.parametrize(
    "fault",
    [
        lambda plan: proxy_page(502),
        lambda plan: proxy_page(503),
        lambda plan: simulator_fault(plan, "busy"),
    ],
    ids=["proxy-502", "proxy-503-without-retry-after", "server-500-lock-wait"],
)
async def test_create_answered_5xx_is_not_retried(fault) -> None:
    """A create answered 5xx without Retry-After may have been acted on: OutcomeUnknown after exactly one request."""
    plan = FaultPlan("none", seed=1)
    app = miclinik.create_app(WORLD, faults=plan)
    gate = FaultGate(products_create, fault(plan))
    async with serve(app, gate) as origin:
        source = settings_for("miclinik", origin + BASE, 4)
        async with HttpTransport(source) as transport:
            with pytest.raises(OutcomeUnknown) as raised:
                await MiclinikClient(source, transport).create("products", {"ref": REF, "label": "Retry probe"})
    assert gate.requests == 1
    assert raised.value.status in (500, 502, 503) and "POST products" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [(429, None), (429, 1), (503, 1)],
    ids=["429", "429-retry-after", "503-retry-after"],
)
async def test_create_refused_without_effect_is_retried_and_returns_the_id(
    status: int, retry_after: int | None
) -> None:
    """A create refused with 429 (or 503 with Retry-After) is sent again: two requests, one product, its id returned."""
    app = miclinik.create_app(WORLD)
    gate = FaultGate(products_create, proxy_page(status, retry_after=retry_after), faulty=1)
    async with serve(app, gate) as origin:
        source = settings_for("miclinik", origin + BASE, 4, retry_after_max=0.05)
        async with HttpTransport(source) as transport:
            new_id = await MiclinikClient(source, transport).create("products", {"ref": REF, "label": "Retry probe"})
    assert gate.requests == 2
    assert products_with_ref(app[miclinik.STATE], REF) == [new_id]


@pytest.mark.parametrize("n", [3, 4])
async def test_create_on_a_refused_connection_is_retried_as_not_sent(n: int) -> None:
    """A create whose connection is refused was never sent: it is tried max_attempts=N times, then TransportError."""
    source = settings_for("miclinik", f"http://127.0.0.1:{closed_port()}{BASE}", n)
    async with HttpTransport(source) as transport:
        with pytest.raises(TransportError, match=r"\(not sent\)") as raised:
            await MiclinikClient(source, transport).create("products", {"ref": REF, "label": "Retry probe"})
        assert transport.stats.requests == n and transport.stats.retries == n - 1
    assert f"after {n} attempts" in str(raised.value)


async def test_refused_key_stops_at_auth_confirmations_below_max_attempts() -> None:
    """With options.auth_confirmations=2 under max_attempts=4, a key refused with 401 every time is asked twice."""
    plan = FaultPlan("none", seed=1)
    app = miclinik.create_app(WORLD, faults=plan, options=miclinik.MiclinikOptions(bad_key_delay=0, revoked_burst=1))
    gate = FaultGate(products_list, simulator_fault(plan, "revoked_key"))
    async with serve(app, gate) as origin:
        source = settings_for("miclinik", origin + BASE, 4, options={"auth_confirmations": 2})
        async with HttpTransport(source) as transport:
            client = MiclinikClient(source, transport)
            await client.open()
            with pytest.raises(AuthenticationError, match=r"after 2 attempts"):
                await client.get_list("products", {**ORDER, "page": 0})
    assert gate.requests == 2
