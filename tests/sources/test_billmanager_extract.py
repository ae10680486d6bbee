"""BILLmanager extraction against the simulated panel on real sockets, into a real staging database."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from etl.db.staging import StagedRecord, StreamState, SyncRun
from etl.http.errors import BadRequest, PermissionDenied
from etl.http.transport import HttpTransport
from etl.pipeline.extract import StreamResult, extract_stream
from etl.settings import SourceSettings
from etl.simulators.billmanager import STATE, BillmanagerOptions, BillmanagerState, create_app
from etl.simulators.faults import FaultPlan, fault_middleware
from etl.simulators.world import World
from etl.sources.billmanager import SOURCE
from etl.sources.billmanager.client import BillmanagerClient
from jobs.extract import run_extract
from tests.support import shipped_settings, simulators, source_for, staged_content, staged_keys

ENTITIES = {stream.entity for stream in SOURCE.streams}


class Clock:
    """A wall clock the test can move forward, handed to the simulator's sessions."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@asynccontextmanager
async def panel(
    world: World | None,
    *,
    options: BillmanagerOptions | None = None,
    faults: FaultPlan | None = None,
    middlewares: tuple[Any, ...] = (),
) -> AsyncIterator[tuple[BillmanagerState, str]]:
    """The simulator on 127.0.0.1 with its own options, fault plan and observing middlewares."""
    app = create_app(world, faults=faults, options=options)
    if faults is not None:
        app.middlewares.insert(0, fault_middleware(faults))
    app.middlewares.extend(middlewares)
    async with TestServer(app, host="127.0.0.1") as server:
        yield app[STATE], str(server.make_url("/billmgr"))


async def extract_all(
    engine: AsyncEngine, source: SourceSettings, *, run_id: str = "run-1", progress: Any = None
) -> tuple[dict[str, StreamResult], BillmanagerClient]:
    """Every stream of the source, in order, through the generic engine."""
    results: dict[str, StreamResult] = {}
    async with HttpTransport(source) as transport:
        client = BillmanagerClient(source, transport)
        await client.open()
        for stream_class in SOURCE.streams:
            stream = stream_class(client, source)
            results[stream.name] = await extract_stream(
                engine, stream, source=source.name, run_id=run_id, progress=progress
            )
        await client.close()
    return results, client


def truth(state: BillmanagerState) -> set[tuple[str, str]]:
    """Every (entity, source id) the simulator serves."""
    return {(row.entity, row.source_id) for row in state.truth()}


def without_source(content: set[tuple[str, str, str, str]]) -> set[tuple[str, str, str]]:
    return {row[1:] for row in content}


@pytest.mark.parametrize(
    ("scale", "page_size", "options"),
    [
        (150, 23, BillmanagerOptions()),
        (8, 1, BillmanagerOptions(single_elem_as_array=False)),
        (150, 23, BillmanagerOptions(honour_paging=False)),
    ],
    ids=["paged", "one-row-pages-as-objects", "paging-ignored"],
)
async def test_full_extract_stages_exactly_the_panel_records(engine, scale, page_size, options) -> None:
    """Every stream stages exactly the simulator's records, one call per page, whether rows come paged, alone or all at once."""
    async with panel(World(seed=7, scale=scale), options=options) as (state, url):
        results, _ = await extract_all(engine, source_for("billmanager", url, page_size=page_size))
        assert await staged_keys(engine, "billmanager") == truth(state)
        assert {entity for entity, _ in truth(state)} == ENTITIES
        for result in results.values():
            assert result.complete and result.counts.rejected == 0 and result.counts.records == result.counts.new
            if not options.honour_paging:
                assert result.counts.pages == 1, f"{result.stream}: the whole list is one answer"
        calls = Counter(entry["func"] for entry in state.request_log)
        pages = Counter()
        for stream_class in SOURCE.streams:
            pages[stream_class.func] += results[stream_class.name].counts.pages
        # Look-ahead never asks past the last page, and no page is asked twice (users and staff_users share func=user).
        assert {func: calls[func] for func in pages} == pages
        async with engine.connect() as conn:
            payload = await conn.scalar(
                select(StagedRecord.payload).where(StagedRecord.entity == "account", StagedRecord.source_id == "1")
            )
        assert payload["item_status"]["$color"] and payload["ip"]["$"], "the raw row is kept whole"


async def test_empty_installation_stages_nothing(engine) -> None:
    """An installation without clients (no ``elem`` in any list but the staff's) completes every stream, staging only the admin."""
    async with panel(None) as (_state, url):
        results, _ = await extract_all(engine, source_for("billmanager", url))
        assert all(r.complete and r.counts.records == (r.stream == "staff_users") for r in results.values())
        assert await staged_keys(engine, "billmanager") == {("staff_user", "1")}


async def test_session_expiring_mid_extraction_is_renewed_transparently(engine) -> None:
    """An hour of panel time passing mid-scan costs one new login and changes nothing in staging."""
    clock, moved = Clock(), []

    def progress(source: str, stream: str, counts: Any) -> None:
        # Progress comes per committed transaction, which may hold several pages.
        if stream == "payments" and counts.pages >= 2 and not moved:
            moved.append(True)
            clock.offset += 3601

    async with panel(World(seed=7, scale=100), options=BillmanagerOptions(clock=clock)) as (state, url):
        source = source_for("billmanager", url, page_size=20)
        results, client = await extract_all(engine, source, progress=progress)
        assert all(r.complete for r in results.values())
        assert await staged_keys(engine, "billmanager") == truth(state)
        logins = [entry for entry in state.request_log if entry["func"] == "auth"]
        refused = [entry for entry in state.request_log if entry["result"] == "error:auth"]
        assert client.logins == len(logins) == 2 and refused, "one expiry, one renewal"
        again, _ = await extract_all(engine, source, run_id="run-2")
        assert all((r.counts.new, r.counts.changed, r.counts.deleted) == (0, 0, 0) for r in again.values())


async def test_dropped_sessions_are_renewed_once_each(engine) -> None:
    """Sessions the panel drops at random (session_expiry fault) are each renewed once; staging is complete."""
    plan = FaultPlan("none", seed=3, rates={"session_expiry": 0.08})
    async with panel(World(seed=7, scale=150), faults=plan) as (state, url):
        _, client = await extract_all(engine, source_for("billmanager", url, page_size=15))
        dropped = plan.fired.get("session_expiry", 0)
        assert dropped >= 2
        # One login per dropped session, except that a drop on the very last request is never noticed.
        assert dropped <= client.logins <= 1 + dropped
        assert await staged_keys(engine, "billmanager") == truth(state)


async def test_authinfo_mode_keeps_the_password_out_of_urls_and_logs(engine) -> None:
    """authinfo mode needs no session, sends the password only in form bodies and never logs it."""
    password = "demo-billmgr-pass"
    query_strings: list[str] = []

    @web.middleware
    async def record_query(request: web.Request, handler: Any) -> web.StreamResponse:
        query_strings.append(request.query_string)
        return await handler(request)

    plan = FaultPlan("flaky", seed=11)
    async with panel(World(seed=7, scale=80), faults=plan, middlewares=(record_query,)) as (state, url):
        source = source_for("billmanager", url, page_size=10, options={"auth_mode": "authinfo"})
        with capture_logs() as logs:
            results, client = await extract_all(engine, source)
        assert all(r.complete for r in results.values())
        assert await staged_keys(engine, "billmanager") == truth(state)
        assert client.logins == 0 and not [e for e in state.request_log if e["func"] == "auth"]
        assert {e["method"] for e in state.request_log} == {"POST"}
        assert query_strings and not [q for q in query_strings if password in q or "authinfo" in q]
        assert any(entry.get("event") == "retrying" for entry in logs), "faults fired, so retries were logged"
        assert password not in repr(logs)


@pytest.mark.parametrize("auth_mode", ["session", "authinfo"])
async def test_bad_credentials_end_the_run_naming_the_source_not_the_password(engine, auth_mode) -> None:
    """A refused password fails every stream with an authentication error that names the source and hides the secret."""
    password = "wrong-Secret-pass-4711"
    async with simulators(["billmanager"], scale=50) as sims:
        source = source_for(
            "billmanager",
            sims["billmanager"].base_url,
            credentials={"username": SecretStr("admin"), "password": SecretStr(password)},
            options={"auth_mode": auth_mode},
        )
        settings = shipped_settings(engine.url.render_as_string(hide_password=False))
        settings = settings.model_copy(update={"sources": [source]})
        with capture_logs() as logs:
            report = await run_extract(settings)
    assert report.status == "failed"
    assert {r.stream for r in report.results} == set(SOURCE.stream_names())
    assert all("authentication" in failure for failure in report.failures())
    async with engine.connect() as conn:
        error = await conn.scalar(select(SyncRun.error).where(SyncRun.id == report.run_id))
    assert "billmanager.accounts" in error and "authentication" in error
    assert password not in error and password not in repr(logs)
    assert await staged_keys(engine, "billmanager") == set()


async def test_a_client_login_without_admin_rights_is_refused(engine) -> None:
    """A client's own login may not list all clients: the stream fails with PermissionDenied."""
    async with panel(World(seed=7, scale=30)) as (state, url):
        login = state.store.users.get(2)
        credentials = {"username": SecretStr(login.name), "password": SecretStr(state.options.client_password)}
        source = source_for("billmanager", url, credentials=credentials)
        with pytest.raises(PermissionDenied, match="func=account: error access"):
            await extract_all(engine, source)


async def test_a_function_missing_from_the_configuration_is_a_clear_bad_request(engine) -> None:
    """A list function the installation lacks fails its stream with a message saying so."""
    options = BillmanagerOptions(disabled_funcs=frozenset({"soft"}))
    async with panel(World(seed=7, scale=30), options=options) as (_state, url):
        with pytest.raises(BadRequest, match="func=soft: the function is not available on this installation"):
            await extract_all(engine, source_for("billmanager", url))


async def test_flaky_faults_stage_the_same_content_as_none(engine) -> None:
    """Under the flaky profile (proxy errors, resets, truncation, dropped sessions) staging equals a fault-free run."""
    async with simulators(["billmanager"], scale=100, faults="none") as calm:
        await extract_all(engine, source_for("billmanager", calm["billmanager"].base_url, name="bm-none", page_size=8))
    async with simulators(["billmanager"], scale=100, faults="flaky", seed=7) as rough:
        url = rough["billmanager"].base_url
        results, _ = await extract_all(engine, source_for("billmanager", url, name="bm-flaky", page_size=8))
        fired = rough["billmanager"].plan.fired
    assert sum(fired.values()) >= 3, fired
    assert all(r.complete for r in results.values())
    flaky = without_source(await staged_content(engine, "bm-flaky"))
    assert flaky == without_source(await staged_content(engine, "bm-none")) and flaky


async def test_second_run_after_edits_updates_exactly_the_changed_rows(engine) -> None:
    """After 1% of records are edited, a full-scan rerun counts as changed exactly the rows whose content differs."""
    async with simulators(["billmanager"], scale=200) as sims:
        sim = sims["billmanager"]
        source = source_for("billmanager", sim.base_url, page_size=50)
        await extract_all(engine, source)
        before = {row[1:3]: row[3] for row in await staged_content(engine, "billmanager")}
        edited = sim.state.mutate(0.01, seed=5)
        results, _ = await extract_all(engine, source, run_id="run-2")
    after = {row[1:3]: row[3] for row in await staged_content(engine, "billmanager")}
    differing = {key for key in after if before.get(key) != after[key]}
    assert set(before) == set(after)
    assert edited >= 5 and len(differing) >= edited
    assert sum(r.counts.changed for r in results.values()) == len(differing)
    assert sum(r.counts.new + r.counts.deleted for r in results.values()) == 0


async def test_interrupted_run_resumes_without_refetching_staged_pages(engine) -> None:
    """A run stopped at page four resumes there, fetches no staged page again and ends like an uninterrupted run."""
    deny = {"on": True}

    # The run is stopped by the panel refusing page 4 (a fatal answer), not by cancelling the task
    # from the progress callback: the engine's prefetch queue hangs when cancelled while full.
    @web.middleware
    async def refuse_page_four(request: web.Request, handler: Any) -> web.StreamResponse:
        form = await request.post()
        if deny["on"] and form.get("func") == "payment" and form.get("p_num") == "4":
            error = {"$type": "access", "$object": "func", "msg": {"$": "Insufficient privileges"}}
            return web.json_response({"doc": {"$func": "payment", "error": error}})
        return await handler(request)

    async with panel(World(seed=7, scale=150), middlewares=(refuse_page_four,)) as (state, url):
        source = source_for("billmanager", url, page_size=10)
        payments = next(s for s in SOURCE.streams if s.name == "payments")
        async with HttpTransport(source) as transport:
            client = BillmanagerClient(source, transport)
            with pytest.raises(PermissionDenied):
                await extract_stream(engine, payments(client, source), source=source.name, run_id="r1")
            async with engine.connect() as conn:
                saved = await conn.scalar(select(StreamState.state).where(StreamState.stream == "payments"))
            assert saved["scan"]["cursors"][0]["p_num"] == 4
            assert len(await staged_keys(engine, "billmanager")) == 30
            deny["on"], mark = False, len(state.request_log)
            resumed = await extract_stream(engine, payments(client, source), source=source.name, run_id="r2")
        pages = [int(e["p_num"]) for e in state.request_log[mark:] if e["func"] == "payment"]
        assert resumed.complete and min(pages) == 4, "pages 1-3 were staged and are not fetched again"
        assert not [p for p, n in Counter(pages).items() if n > 1], "no page fetched twice"
        assert resumed.counts.new == resumed.counts.records
        whole = source_for("billmanager", url, page_size=10, name="bm-whole")
        async with HttpTransport(whole) as transport:
            client = BillmanagerClient(whole, transport)
            await extract_stream(engine, payments(client, whole), source="bm-whole", run_id="r3")
        expected = {("payment", row.source_id) for row in state.truth() if row.entity == "payment"}
    resumed_content = without_source(await staged_content(engine, "billmanager"))
    assert resumed_content == without_source(await staged_content(engine, "bm-whole"))
    assert {row[:2] for row in resumed_content} == expected
