"""The Microbizz extractor against the Microbizz simulator, over real sockets, into a real database."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from etl.db.engine import session_factory
from etl.db.staging import RejectedRecord, StagedRecord, SyncRun
from etl.http.errors import BadRequest
from etl.http.transport import HttpTransport
from etl.pipeline.checkpoints import load_state, save_state
from etl.pipeline.extract import StreamResult, extract_stream
from etl.settings import Settings, SourceSettings
from etl.simulators.faults import FaultPlan, fault_middleware
from etl.simulators.microbizz import DEMO_CREDENTIALS, STATE, MicrobizzOptions, MicrobizzState, create_app
from etl.simulators.world import World
from etl.sources.microbizz import SOURCE
from etl.sources.microbizz.client import MicrobizzClient
from jobs.extract import run_extract

PATH = "/api/endpoint.php"
WORLD = World(seed=5, scale=1000)
SMALL_WORLD = World(seed=9, scale=300)
LINES = "GetInvoiceLinesByLastChange"


@asynccontextmanager
async def microbizz(
    world: World | None, *, faults: FaultPlan | None = None, proxy: bool = False, **options: Any
) -> AsyncIterator[tuple[MicrobizzState, str]]:
    """A simulator on a loopback port; ``proxy`` puts the generic fault middleware in front."""
    app = create_app(world, faults=faults, options=MicrobizzOptions(**options))
    if proxy and faults is not None:
        app.middlewares.insert(0, fault_middleware(faults))
    async with TestServer(app, host="127.0.0.1") as server:
        yield app[STATE], str(server.make_url(PATH))


def settings_for(
    url: str, name: str = "mbz", credentials: dict[str, str] | None = None, **extra: Any
) -> SourceSettings:
    return SourceSettings(
        name=name,
        kind="microbizz",
        base_url=url,
        credentials=credentials or DEMO_CREDENTIALS,
        backoff_initial=0.01,
        backoff_max=0.05,
        concurrency=1,
        rate_limit=10_000,
        **extra,
    )


async def extract_all(
    engine: AsyncEngine,
    settings: SourceSettings,
    run_id: str,
    *,
    full: bool = False,
    streams: Iterable[str] = (),
    progress: Any = None,
) -> dict[str, StreamResult]:
    """Open the client once and run the chosen streams (all by default) through the engine."""
    wanted = set(streams)
    results: dict[str, StreamResult] = {}
    async with HttpTransport(settings) as transport:
        client = MicrobizzClient(settings, transport)
        await client.open()
        for stream_class in SOURCE.streams:
            if wanted and stream_class.name not in wanted:
                continue
            stream = stream_class(client, settings)
            results[stream.name] = await extract_stream(
                engine, stream, source=settings.name, run_id=run_id, full=full, progress=progress
            )
    return results


async def staged(engine: AsyncEngine, source: str = "mbz", *, live: bool = False) -> set[tuple[str, str, str]]:
    """Staged rows; ``live`` leaves out those marked deleted (tombstones included: truth() serves them)."""
    query = select(StagedRecord.entity, StagedRecord.source_id, StagedRecord.content_hash)
    query = query.where(StagedRecord.source == source)
    if live:
        query = query.where(StagedRecord.deleted_at.is_(None))
    async with engine.connect() as conn:
        return {tuple(row) for row in await conn.execute(query)}


def hour_before(received: str) -> str:
    """A logged receipt time ("YYYY-MM-DD HH:MM:SS", tenant local) one hour earlier: the watermark overlap."""
    return (datetime.strptime(received, "%Y-%m-%d %H:%M:%S") - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")


def truth_of(state: MicrobizzState, entity: str | None = None) -> set[tuple[str, str]]:
    return {(row.entity, row.source_id) for row in state.truth() if entity in (None, row.entity)}


def calls_of(state: MicrobizzState, command: str, start: int = 0) -> list[dict[str, Any]]:
    """The single-command envelopes of ``command`` logged since ``start``."""
    return [entry["what"][0] for entry in state.request_log[start:] if entry["commands"] == [command]]


def chunk_key(call: dict[str, Any]) -> tuple[Any, ...]:
    return (call["command"], call.get("changedate"), call.get("changetime"), call.get("resumekey"))


class Killed(Exception):
    """Stands for the process dying right after a chunk was committed."""


def kill_after(pages: int) -> Any:
    def progress(source: str, stream: str, counts: Any) -> None:
        if counts.pages >= pages:
            raise Killed(f"killed after {counts.pages} chunks")

    return progress


async def test_full_extract_stages_exactly_the_simulators_records(engine: AsyncEngine) -> None:
    """A first run reads every stream from 1970 through all resumekey chunks and stages exactly truth()."""
    async with microbizz(WORLD, chunk_size=100) as (state, url):
        results = await extract_all(engine, settings_for(url), "run-1")
        truth = truth_of(state)
        lines = calls_of(state, LINES)
    assert {(entity, sid) for entity, sid, _ in await staged(engine)} == truth
    assert {entity for entity, _ in truth} == {"customer", "user", "product", "order_line", "todo"}
    assert all(r.complete and r.counts.rejected == 0 for r in results.values())
    line_count = sum(1 for entity, _ in truth if entity == "order_line")
    assert len(lines) == -(-line_count // 100) == results["invoice_lines"].counts.calls
    assert {(c["changedate"], c["changetime"]) for c in lines} == {("1970-01-01", "00:00:00")}
    assert lines[0].get("resumekey") is None and all(c.get("resumekey") for c in lines[1:])


async def test_connection_check_is_one_envelope_of_echo_and_probes(engine: AsyncEngine) -> None:
    """open() sends one envelope: Echo plus an empty probe of each sync command, all from the future."""
    async with microbizz(SMALL_WORLD) as (state, url):
        async with HttpTransport(settings_for(url)) as transport:
            await MicrobizzClient(settings_for(url), transport).open()
        assert state.call_count == 1
        what = state.request_log[0]["what"]
    assert [w["command"] for w in what] == ["Echo", *(s.command for s in SOURCE.streams)]
    assert all(w["changedate"] == "2999-12-31" for w in what[1:])


async def test_incremental_run_reads_only_changed_records(engine: AsyncEngine) -> None:
    """After mutate(0.01) the next run asks from the first call's envelope time and stages only the changes."""
    async with microbizz(WORLD, chunk_size=100) as (state, url):
        settings = settings_for(url)
        await extract_all(engine, settings, "run-1")
        stamped = {}
        for entry in state.request_log:
            if len(entry["commands"]) == 1:
                stamped.setdefault(entry["commands"][0], entry["received"])
        changed = state.mutate(0.01, seed=11)
        before = len(state.request_log)
        results = await extract_all(engine, settings, "run-2")
        second = {s.command: calls_of(state, s.command, before) for s in SOURCE.streams}
        async with engine.connect() as conn:
            touched = (await conn.execute(select(StagedRecord.id).where(StagedRecord.last_seen_run == "run-2"))).all()
        before = len(state.request_log)
        full = await extract_all(engine, settings, "run-3", full=True)
        third = {s.command: calls_of(state, s.command, before) for s in SOURCE.streams}
    assert changed > 10
    for command, calls in second.items():
        # One chunk each, from an hour before the date/time the server stamped on run-1's first call.
        assert [f"{c['changedate']} {c['changetime']}" for c in calls] == [hour_before(stamped[command])], command
    # Every record read was changed: the overlap is empty, as nothing changed in the hour before run-1.
    assert sum(r.counts.records for r in results.values()) == changed
    # A record whose edit set its deleted flag counts as deleted (a tombstone), the rest as changed.
    assert sum(r.counts.changed + r.counts.deleted for r in results.values()) == changed
    assert sum(r.counts.new + r.counts.unchanged for r in results.values()) == 0
    assert len(touched) == changed
    # --full reads everything from 1970 again and finds staging already equal to the source.
    assert all(calls[0]["changedate"] == "1970-01-01" and calls[0].get("resumekey") is None for calls in third.values())
    assert sum(r.counts.new + r.counts.changed + r.counts.deleted for r in full.values()) == 0
    assert sum(r.counts.unchanged for r in full.values()) == len(list(state.truth()))


async def test_watermark_is_the_envelope_time_of_the_scans_first_call(engine: AsyncEngine) -> None:
    """The stored watermark is the date/time the server stamped on the first chunk's envelope, not a later one."""
    async with microbizz(SMALL_WORLD, chunk_size=40) as (state, url):
        await extract_all(engine, settings_for(url), "run-1", streams=["invoice_lines"])
        first = next(e for e in state.request_log if e["commands"] == [LINES])
    async with session_factory(engine)() as session:
        stored = await load_state(session, "mbz", "invoice_lines")
    assert f"{stored.watermark['changedate']} {stored.watermark['changetime']}" == hour_before(first["received"])
    assert stored.scan is None


async def test_killed_runs_resume_without_refetching_staged_chunks(engine: AsyncEngine) -> None:
    """Runs killed after a few chunks each resume at the stored resumekey; no staged chunk is ever fetched again."""
    async with microbizz(SMALL_WORLD, chunk_size=20) as (state, url):
        settings = settings_for(url, commit_rows=1)  # a transaction per chunk, so kills land between chunks
        staged_keys: list[tuple[Any, ...]] = []
        for attempt in range(1, 40):
            start, pages = len(state.request_log), {"n": 0}

            def progress(source: str, stream: str, counts: Any, pages: dict[str, int] = pages) -> None:
                pages["n"] = counts.pages
                if counts.pages >= 3:
                    raise Killed("killed")

            with suppress(Killed):
                await extract_all(engine, settings, f"run-{attempt}", streams=["invoice_lines"], progress=progress)
            calls = [chunk_key(c) for c in calls_of(state, LINES, start)]
            assert not set(calls) & set(staged_keys), f"run {attempt} refetched a staged chunk"
            staged_keys += calls[: pages["n"]]
            async with session_factory(engine)() as session:
                saved = await load_state(session, "mbz", "invoice_lines")
            if saved.scan is None:
                break
        truth = truth_of(state, "order_line")
        first = next(e for e in state.request_log if e["commands"] == [LINES])
    assert attempt > 5
    assert len(staged_keys) == len(set(staged_keys)) == -(-len(truth) // 20)
    assert {(e, sid) for e, sid, _ in await staged(engine) if e == "order_line"} == truth
    # The watermark is still the first call's, made by the first of all those runs.
    assert f"{saved.watermark['changedate']} {saved.watermark['changetime']}" == hour_before(first["received"])


async def test_refused_resumekey_restarts_the_sequence_at_the_same_time(engine: AsyncEngine) -> None:
    """A stored resumekey the server no longer accepts restarts the chunk sequence at the same date/time."""
    async with microbizz(SMALL_WORLD, chunk_size=30) as (state, url):
        settings = settings_for(url, commit_rows=1)  # a transaction per chunk, so the kill lands mid-sequence
        with suppress(Killed):
            await extract_all(engine, settings, "run-1", streams=["invoice_lines"], progress=kill_after(2))
        async with session_factory(engine)() as session, session.begin():
            saved = await load_state(session, "mbz", "invoice_lines")
            saved.scan.cursors[0]["resumekey"] = "expired.0000000000000000"
            await save_state(session, "mbz", "invoice_lines", saved)
        start = len(state.request_log)
        result = await extract_all(engine, settings, "run-2", streams=["invoice_lines"])
        calls = calls_of(state, LINES, start)
        truth = truth_of(state, "order_line")
    assert calls[0]["resumekey"] == "expired.0000000000000000"
    assert calls[1].get("resumekey") is None and calls[1]["changedate"] == calls[0]["changedate"]
    counts = result["invoice_lines"].counts
    assert result["invoice_lines"].complete and counts.calls == counts.pages + 1
    assert {(e, sid) for e, sid, _ in await staged(engine) if e == "order_line"} == truth


async def test_flaky_faults_stage_the_same_content_as_none(engine: AsyncEngine) -> None:
    """With the flaky profile (proxy faults, busy envelopes, failed batch items) staging equals a calm run."""
    async with microbizz(SMALL_WORLD, chunk_size=5) as (_, url):
        await extract_all(engine, settings_for(url, "calm"), "run-calm")
    # The flaky rates as they are; only the waits they impose are shortened to keep the test quick.
    plan = FaultPlan("flaky", seed=4, retry_after_seconds=0, slow_page_seconds=0.1)
    async with microbizz(SMALL_WORLD, faults=plan, proxy=True, chunk_size=5) as (state, url):
        settings = settings_for(url, "flaky")
        async with HttpTransport(settings) as transport:
            client = MicrobizzClient(settings, transport)
            await client.open()
            for stream_class in SOURCE.streams:
                await extract_stream(engine, stream_class(client, settings), source="flaky", run_id="run-flaky")
            retries = transport.stats.retries
    calm, flaky = await staged(engine, "calm"), await staged(engine, "flaky")
    assert flaky == calm and len(calm) == len(list(state.truth()))
    assert sum(plan.fired.values()) >= 10 and retries >= 5, plan.describe()
    assert len({"proxy_5xx", "proxy_429", "reset", "truncated", "busy"} & set(plan.fired)) >= 4, plan.describe()


async def test_busy_answers_and_failed_batch_items_are_retried(engine: AsyncEngine) -> None:
    """Envelope "server busy" and a batch item "temporarily unavailable" are retried until the data is complete."""
    plan = FaultPlan("none", seed=2, rates={"busy": 0.3, "partial_batch": 0.5})
    async with microbizz(SMALL_WORLD, faults=plan, chunk_size=25) as (state, url):
        settings = settings_for(url)
        async with HttpTransport(settings) as transport:
            client = MicrobizzClient(settings, transport)
            await client.open()
            for stream_class in SOURCE.streams:
                await extract_stream(engine, stream_class(client, settings), source="mbz", run_id="run-1")
            kinds = transport.stats.retry_kinds
        truth = truth_of(state)
    assert {(e, sid) for e, sid, _ in await staged(engine)} == truth
    assert plan.fired.get("busy", 0) >= 3
    assert kinds["busy"] == plan.fired["busy"] + plan.fired.get("partial_batch", 0)


async def test_refused_sync_command_fails_its_stream_only(engine: AsyncEngine) -> None:
    """A sync command the tenant refuses at the connection check fails that stream with the server's reason."""
    async with microbizz(SMALL_WORLD) as (state, url):
        settings = settings_for(url, options={"users_command": "GetEmployeesByLastChange"})
        results = await extract_all(engine, settings, "run-1", streams=["customers"])
        async with HttpTransport(settings) as transport:
            client = MicrobizzClient(settings, transport)
            await client.open()
            stream = SOURCE.streams[1](client, settings)
            with pytest.raises(BadRequest) as refused:
                await extract_stream(engine, stream, source="mbz", run_id="run-1")
        calls = Counter(c for e in state.request_log for c in e["commands"])
    assert results["customers"].complete
    assert str(refused.value) == "GetEmployeesByLastChange: Unknown command GetEmployeesByLastChange"
    assert calls["GetEmployeesByLastChange"] == 2  # the two connection checks, never a stream call


async def test_access_token_identifies_instead_of_key_and_password(engine: AsyncEngine) -> None:
    """contract + accesstoken (app-connect) is enough to extract."""
    async with microbizz(SMALL_WORLD, access_tokens=("app-token-123",)) as (state, url):
        settings = settings_for(url, credentials={"contract": "2391", "accesstoken": "app-token-123"})
        await extract_all(engine, settings, "run-1", streams=["users"])
        truth = truth_of(state, "user")
    assert {(e, sid) for e, sid, _ in await staged(engine)} == truth


async def test_bad_credentials_end_the_run_with_a_clear_message(migrated_url: str) -> None:
    """A refused password ends the source's run as an authentication failure, naming no secret."""
    async with microbizz(SMALL_WORLD) as (state, url):
        credentials = DEMO_CREDENTIALS | {"password": "wrong-secret-pass"}
        settings = Settings(database_url=migrated_url, sources=[settings_for(url, credentials=credentials)])
        report = await run_extract(settings)
        calls = state.call_count
    assert report.status == "failed" and calls == 1
    assert {r.status for r in report.results} == {"failed"} and len(report.results) == len(SOURCE.streams)
    message = report.failures()[0]
    assert "authentication" in message and "Invalid username or password" in message
    assert "wrong-secret-pass" not in message
    from etl.db.engine import create_engine

    engine = create_engine(migrated_url)
    try:
        async with engine.connect() as conn:
            error = await conn.scalar(select(SyncRun.error))
    finally:
        await engine.dispose()
    assert error and "wrong-secret-pass" not in error and "authentication" in error


async def test_bad_records_are_rejected_and_the_rest_staged(engine: AsyncEngine) -> None:
    """Records without a usable id go to rejected_records with a reason; the chunk's good records are staged."""
    customers = [
        {"id": 1001, "name": "Good A/S"},
        {"name": "No id ApS"},
        {"id": [7], "name": "List id"},
        "not an object",
        {"id": True, "name": "Boolean id"},
        {"id": 1002, "name": "Good too", "unknownfield": {"nested": 1}},
    ]

    async def endpoint(request: web.Request) -> web.Response:
        envelope = json.loads((await request.post())["json"])
        results = []
        for command in envelope["commands"]:
            future = command.get("changedate") == "2999-12-31"
            if command["command"] == "Echo":
                results.append({"status": 1, "answer": command["text"]})
            else:
                key = "todos" if "Todos" in command["command"] else command["command"][3:-12].lower()
                results.append({"status": 1, key: [] if future else customers})
        return web.json_response(
            {"status": 1, "msg": "OK", "results": results, "date": "2025-03-01", "time": "09:25:47"}
        )

    app = web.Application()
    app.router.add_post(PATH, endpoint)
    async with TestServer(app, host="127.0.0.1") as server:
        result = await extract_all(engine, settings_for(str(server.make_url(PATH))), "run-1", streams=["customers"])
    counts = result["customers"].counts
    assert (counts.records, counts.new, counts.rejected) == (6, 2, 4)
    rows = await staged(engine)
    assert {sid for _, sid, _ in rows} == {"1001", "1002"}
    async with engine.connect() as conn:
        reasons = sorted((await conn.execute(select(RejectedRecord.reason))).scalars())
        payload = await conn.scalar(select(StagedRecord.payload).where(StagedRecord.source_id == "1002"))
    assert reasons == [
        "id is a list, not a string or integer",
        "missing id",
        "missing id",
        "record is a str, not an object",
    ]
    assert payload["unknownfield"] == {"nested": 1}
