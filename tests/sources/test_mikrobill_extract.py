"""MikroBILL extraction against the MikroBILL simulator on real sockets, staged in a real database."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from etl.db.staging import RejectedRecord, StagedRecord
from etl.http.errors import AuthenticationError, BadRequest, ProtocolError
from etl.http.transport import HttpTransport
from etl.pipeline.extract import StreamResult, extract_stream
from etl.settings import Settings, SourceSettings
from etl.simulators.faults import FaultPlan, fault_middleware
from etl.simulators.mikrobill import (
    DEMO_CREDENTIALS,
    SESSION_HEADER,
    STATE,
    MikrobillOptions,
    MikrobillState,
    create_app,
)
from etl.simulators.world import World
from etl.sources.base import Stream
from etl.sources.mikrobill import SOURCE, CustomersStream, MikrobillClient
from etl.sources.mikrobill.codes import CodeTable
from jobs.extract import run_extract
from tests.support import shipped_settings

WORLD = World(seed=11, scale=400)
ENTITIES = {stream.entity for stream in SOURCE.streams}


class VendorRefusal(Exception):
    """What the stand-in vendor class raises when the core refuses the connection."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class UrllibMikrobill:
    """A stand-in for the vendor's blocking ``mikrobill-api.py`` class: its constructor and methods, urllib below."""

    def __init__(
        self,
        host: str,
        port: int,
        login: str,
        password: str,
        crypto_key_1: str | None = None,
        crypto_key_2: str | None = None,
    ) -> None:
        # The manual adds the two keys only when the library runs away from the cash desk's server.
        self.url, self.token = f"http://{host}:{port}", ""
        keys = {"login": login, "password": password, "crypto_key_1": crypto_key_1, "crypto_key_2": crypto_key_2}
        answer = json.loads(self._post("/connect", keys))
        if answer["code"] != 0:
            raise VendorRefusal(answer["code"], answer["return"])
        self.token = answer["return"]

    def Process(self, path: str, args: Any = None) -> str:  # the vendor's method name
        # Returns JSON text, as a library printing the core's answer would; the seam decodes either form.
        return self._post("/process", {"path": path, "args": args})

    def Close(self) -> None:
        self._post("/close", {})

    def _post(self, route: str, body: Any) -> str:
        request = urllib.request.Request(
            self.url + route,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", SESSION_HEADER: self.token},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode()


@asynccontextmanager
async def mikrobill(
    world: World | None = WORLD, *, faults: FaultPlan | None = None, options: MikrobillOptions | None = None
) -> AsyncIterator[tuple[MikrobillState, str]]:
    """A simulated MikroBILL core on 127.0.0.1, with the proxy faults in front when a plan is given."""
    app = create_app(world, faults=faults, options=options)
    if faults is not None:
        app.middlewares.insert(0, fault_middleware(faults))
    async with TestServer(app, host="127.0.0.1") as server:
        yield app[STATE], str(server.make_url("/"))


SHIPPED_CODES = dict(next(s for s in shipped_settings().sources if s.kind == "mikrobill").options.codes)


def settings_for(url: str, name: str = "mb", **overrides: Any) -> SourceSettings:
    """A MikroBILL source pointed at ``url`` with quick retries."""
    fields: dict[str, Any] = {
        "name": name,
        "kind": "mikrobill",
        "base_url": url,
        "credentials": dict(DEMO_CREDENTIALS),
        "page_size": 50,
        "rate_limit": 5000,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "max_attempts": 10,
    }
    # The result-code table is a setting (the real numbers are unknown): the shipped one is the simulator's.
    options = {"codes": SHIPPED_CODES, **overrides.pop("options", {})}
    return SourceSettings(**(fields | overrides | {"options": options}))


async def extract(
    engine: AsyncEngine, settings: SourceSettings, run_id: str, streams: Sequence[type[Stream]] = SOURCE.streams
) -> dict[str, StreamResult]:
    """Open a client and run the streams one after another, as the extract job does."""
    async with HttpTransport(settings) as transport:
        client = MikrobillClient(settings, transport)
        await client.open()
        try:
            return {
                stream.name: await extract_stream(engine, stream(client, settings), source=settings.name, run_id=run_id)
                for stream in streams
            }
        finally:
            await client.close()


async def staged(engine: AsyncEngine, source: str) -> set[tuple[str, str, str]]:
    """(entity, source_id, content_hash) of every live staged record of ``source``."""
    query = select(StagedRecord.entity, StagedRecord.source_id, StagedRecord.content_hash).where(
        StagedRecord.source == source, StagedRecord.deleted_at.is_(None)
    )
    async with engine.connect() as conn:
        return {(row[0], row[1], row[2]) for row in await conn.execute(query)}


async def payload(engine: AsyncEngine, source: str, entity: str, source_id: str) -> Any:
    """The staged raw payload of one record."""
    query = select(StagedRecord.payload).where(
        StagedRecord.source == source, StagedRecord.entity == entity, StagedRecord.source_id == source_id
    )
    async with engine.connect() as conn:
        return (await conn.execute(query)).scalar_one()


def truth(state: MikrobillState) -> set[tuple[str, str]]:
    """(entity, source_id) of every record the simulator serves."""
    return {(row.entity, row.source_id) for row in state.truth() if row.entity in ENTITIES}


def keys(content: set[tuple[str, str, str]]) -> set[tuple[str, str]]:
    return {(entity, source_id) for entity, source_id, _ in content}


@pytest.mark.parametrize("id_type", ["number", "string"])
async def test_every_stream_stages_exactly_the_simulator_records(engine: AsyncEngine, id_type: str) -> None:
    """Customers, accounts, products and payments stage exactly the simulator's records, with its values."""
    async with mikrobill(options=MikrobillOptions(id_type=id_type)) as (state, url):
        results = await extract(engine, settings_for(url), "run-1")
        content = await staged(engine, "mb")
        assert keys(content) == truth(state)
        assert all(result.complete and result.counts.rejected == 0 for result in results.values())
        row = state.store.find(next(iter(state.store.client_ids())))
        assert row is not None
        customer = await payload(engine, "mb", "customer", str(row.client_id))
        assert customer["AutorizeInfo"]["Name"] == state.store.name(row)
        assert customer["BillingInfo"]["Money"] == f"{state.store.money(row):.2f}"
        assert customer["AutorizeInfo"]["Accounts"] == [state.options.render_id(a.guid) for a in row.accounts]
        account = await payload(engine, "mb", "account", str(row.accounts[0].guid))
        assert (account["client_id"], account["IP"], account["MAC"]) == (
            str(row.client_id),
            row.accounts[0].ip,
            row.accounts[0].mac,
        )
        assert "Password" not in account


@pytest.mark.slow
async def test_ten_thousand_clients_take_a_few_hundred_process_calls(engine: AsyncEngine) -> None:
    """Extracting ~10,000 clients with their accounts, products and payments takes at most 300 Process calls."""
    world = World(seed=3, scale=18_200)
    async with mikrobill(world) as (state, url):
        results = await extract(engine, settings_for(url, page_size=250), "run-big")
        print(f"\nMikroBILL: {len(world.members('mikrobill'))} clients extracted with {state.call_count} Process calls")
        assert len(world.members("mikrobill")) >= 10_000
        assert state.call_count <= 300
        assert sum(result.counts.records for result in results.values()) == sum(1 for _ in state.truth())


async def test_flaky_faults_give_the_same_staged_content(engine: AsyncEngine) -> None:
    """With the "flaky" profile (proxy errors, resets, busy core, partial batches) staging equals a fault-free run."""
    async with mikrobill() as (_, url):
        await extract(engine, settings_for(url, name="calm", page_size=10), "run-calm")
    plan = FaultPlan("flaky", seed=5)
    async with mikrobill(faults=plan) as (_, url):
        await extract(engine, settings_for(url, name="flaky", page_size=10), "run-flaky")
    assert plan.fired, "no fault fired: the test proves nothing"
    assert await staged(engine, "flaky") == await staged(engine, "calm")


async def test_busy_batch_items_are_read_again_alone(engine: AsyncEngine) -> None:
    """Items answered "busy" inside a batch are re-read on their own, and staging still equals the truth."""
    plan = FaultPlan("none", seed=9, rates={"partial_batch": 0.5, "busy": 0.1})
    async with mikrobill(faults=plan) as (state, url):
        # Over half of all calls answer some item busy: the policy's attempts are the only bound.
        await extract(engine, settings_for(url, max_attempts=30), "run-1")
        assert keys(await staged(engine, "mb")) == truth(state)
    retries = [e for e in state.request_log if e["what"] == "API.Client" and e.get("items") == 1]
    assert plan.fired.get("partial_batch", 0) > 0 and retries, "the busy items were not re-read alone"


async def test_a_vanished_client_is_rejected_while_the_rest_is_staged(engine: AsyncEngine) -> None:
    """A client listed by GetClients but gone when read is rejected with the core's reason; the page is staged."""
    async with mikrobill() as (state, url):
        settings = settings_for(url)
        async with HttpTransport(settings) as transport:
            client = MikrobillClient(settings, transport)
            await client.open()
            ids = await client.listed_ids("API.GetClients")
            gone = state.store.members[5]
            state.store.members.remove(gone)  # deleted in MikroBILL after the listing was read
            results = {}
            for stream in SOURCE.streams:
                results[stream.name] = await extract_stream(engine, stream(client, settings), source="mb", run_id="r")
            await client.close()
        assert keys(await staged(engine, "mb")) == truth(state)
        for name in ("customers", "accounts", "payments"):
            assert results[name].counts.rejected == 1, name
        async with engine.connect() as conn:
            reasons = (await conn.execute(select(RejectedRecord.entity, RejectedRecord.reason))).all()
        assert {entity for entity, _ in reasons} == {"customer", "account", "payment"}
        assert all(f"client {ids[5]}" in reason and "not found" in reason for _, reason in reasons)


async def test_second_run_after_edits_updates_exactly_the_edited_rows(engine: AsyncEngine) -> None:
    """After users edit 5% of clients, a second full scan changes exactly those rows and equals a fresh extract."""
    async with mikrobill() as (state, url):
        await extract(engine, settings_for(url), "run-1")
        before = await staged(engine, "mb")
        edited = state.mutate(0.05, seed=21)
        second = await extract(engine, settings_for(url), "run-2")
        await extract(engine, settings_for(url, name="fresh"), "run-fresh")
    after = await staged(engine, "mb")
    assert after == await staged(engine, "fresh")
    changed = {(entity, sid) for entity, sid, _ in after - before}
    assert sum(result.counts.changed for result in second.values()) == len(changed)
    assert all(result.counts.new == 0 and result.counts.deleted == 0 for result in second.values())
    # Each edit renames, re-addresses the first account or re-balances one client: one customer or account row.
    assert second["customers"].counts.changed + second["accounts"].counts.changed == edited > 0


async def test_resumed_scan_refetches_no_staged_page(engine: AsyncEngine) -> None:
    """A scan cancelled after 3 pages resumes after them: no staged page is read again, staging equals a full run."""
    async with mikrobill() as (state, url):
        settings = settings_for(url, page_size=20, concurrency=1, commit_rows=1)  # a transaction per page
        async with HttpTransport(settings) as transport:
            client = MikrobillClient(settings, transport)
            await client.open()

            def stop_after_three(source: str, stream: str, counts: Any) -> None:
                if counts.pages == 3:
                    task.cancel()

            stream = CustomersStream(client, settings)
            run = extract_stream(engine, stream, source="mb", run_id="r1", progress=stop_after_three)
            task = asyncio.ensure_future(run)
            await asyncio.wait({task}, timeout=30)
            assert task.done(), "the cancelled extract did not finish"
            assert task.cancelled()
            await client.close()
        first_run = [e["args_digest"] for e in state.request_log if e["what"] == "API.Client"]
        boundary = len(state.request_log)
        resumed = await extract(engine, settings, "r2", streams=[CustomersStream])
        second_run = {e["args_digest"] for e in state.request_log[boundary:] if e["what"] == "API.Client"}
        await extract(engine, settings_for(url, name="whole"), "r3", streams=[CustomersStream])
    # concurrency=1 fetches pages in cursor order, so the first three batches are the three staged pages.
    assert len(first_run) >= 3
    assert not set(first_run[:3]) & second_run
    assert resumed["customers"].counts.records == len(state.store.members) - 60
    assert await staged(engine, "mb") == await staged(engine, "whole")


@pytest.mark.parametrize(
    ("credentials", "options", "kind"),
    [
        ({"password": "wrong-cashier-pass-4711"}, MikrobillOptions(), "authentication"),
        ({"crypto_key_2": "reinstalled-key-4711"}, MikrobillOptions(), "authentication"),
        ({}, MikrobillOptions(cashier_api_allowed=False), "permission"),
    ],
)
# The vendor class by file path here, by module name in the staging test below: both spellings are covered.
@pytest.mark.parametrize("transport", ["http-json", f"python:{__file__}:UrllibMikrobill"])
async def test_refused_connect_ends_the_source_without_the_secret(
    engine: AsyncEngine, credentials: dict[str, str], options: MikrobillOptions, kind: str, transport: str
) -> None:
    """Bad cashier credentials, CRYPTO keys or rights end every stream with a clear message that holds no secret."""
    async with mikrobill(options=options) as (state, url):
        settings = settings_for(url, credentials=DEMO_CREDENTIALS | credentials, options={"transport": transport})
        database_url = engine.url.render_as_string(hide_password=False)
        report = await run_extract(Settings(database_url=database_url, sources=[settings]))
        results = report.results
    assert [r.stream for r in results] == SOURCE.stream_names()
    assert all(r.status == "failed" and r.error and r.error.startswith(f"{kind}:") for r in results)
    assert not any(secret in (results[0].error or "") for secret in credentials.values())
    assert not any(e["what"] == "API.GetClients" for e in state.request_log)


async def test_vendor_class_transport_stages_the_same_records(engine: AsyncEngine) -> None:
    """The vendor seam (a blocking class run in threads) stages exactly what the HTTP JSON transport stages."""
    async with mikrobill() as (state, url):
        await extract(engine, settings_for(url, name="http"), "run-http")
        vendor = settings_for(url, name="vendor", options={"transport": f"python:{__name__}:UrllibMikrobill"})
        await extract(engine, vendor, "run-vendor")
        assert keys(await staged(engine, "vendor")) == truth(state)
    assert await staged(engine, "vendor") == await staged(engine, "http")


async def test_a_batch_refused_as_too_large_is_split(engine: AsyncEngine) -> None:
    """A core that refuses batches over 100 paths gets halves until they fit, and every client is staged."""
    async with mikrobill(options=MikrobillOptions(max_batch_items=100)) as (state, url):
        await extract(engine, settings_for(url), "run-1", streams=[CustomersStream])
        assert keys(await staged(engine, "mb")) == {k for k in truth(state) if k[0] == "customer"}
    answered = [e["items"] for e in state.request_log if e["what"] == "API.Client" and e["items"]]
    assert answered and max(answered) <= 100


async def test_before_2_0_9_every_property_is_its_own_call(engine: AsyncEngine) -> None:
    """Against MikroBILL 2.0.8 the customers stream reads one property per Process call and still stages all."""
    old = MikrobillOptions(version="2.0.8")
    async with mikrobill(World(seed=5, scale=40), options=old) as (state, url):
        with pytest.raises(BadRequest, match="batch"):
            await extract(engine, settings_for(url, name="assumed-new"), "run-0", streams=[CustomersStream])
        before = state.call_count
        settings = settings_for(url, options={"version": "2.0.8"})
        await extract(engine, settings, "run-1", streams=[CustomersStream])
        clients = len(state.store.members)
        assert state.call_count - before == 1 + 6 * clients
        assert keys(await staged(engine, "mb")) == {k for k in truth(state) if k[0] == "customer"}


async def test_lost_session_reconnects_and_a_reinstall_is_fatal(engine: AsyncEngine) -> None:
    """A core that forgot the session gets a new connect and the scan goes on; changed CRYPTO keys end it."""
    async with mikrobill() as (state, url):
        settings = settings_for(url)
        async with HttpTransport(settings) as transport:
            client = MikrobillClient(settings, transport)
            await client.open()
            state.sessions.clear()  # the core restarted
            result = await extract_stream(engine, CustomersStream(client, settings), source="mb", run_id="r1")
            assert result.complete
            assert sum(1 for e in state.request_log if e["path"] == "/connect") == 2
            state.reinstall("new-key-one", "new-key-two")
            with pytest.raises(AuthenticationError, match="code 14") as failure:
                await extract_stream(engine, CustomersStream(client, settings), source="mb", run_id="r2", full=True)
            assert "new-key" not in str(failure.value)


def test_code_table_is_configurable_and_names_unknown_codes() -> None:
    """options.codes moves a code to another category, and a code in no category is a protocol error naming it."""
    table = CodeTable({"busy": [8, 42]})
    assert table.category(42) == "busy" and table.category(2) is None
    error = table.error(77, "mystery", "API.Client")
    assert isinstance(error, ProtocolError) and "77" in str(error)
    assert isinstance(CodeTable().error(8, "busy", "API.Client"), ProtocolError), "no built-in numbers"
