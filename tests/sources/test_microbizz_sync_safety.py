"""Microbizz extraction where the protocol is treacherous (§3.5): the watermark's second, DST nights,
expiring resumekeys, unrecognised envelope failures and deletions; the simulator over real sockets."""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from etl.db.staging import StagedRecord
from etl.http.errors import AuthenticationError, BadRequest, ProtocolError
from etl.http.transport import HttpTransport
from etl.pipeline.extract import extract_stream
from etl.simulators.microbizz import MicrobizzState
from etl.sources.microbizz.client import MicrobizzClient
from etl.sources.microbizz.envelope import UnrecognisedEnvelopeFailure
from etl.sources.microbizz.streams import CustomersStream
from tests.simulators.microbizz_support import ManualClock
from tests.sources.test_microbizz_extract import (
    LINES,
    PATH,
    SMALL_WORLD,
    Killed,
    calls_of,
    extract_all,
    kill_after,
    microbizz,
    settings_for,
    truth_of,
)

FIRST_CUSTOMER = 1000 + next(iter(SMALL_WORLD.members("microbizz")))
# 2026-10-25 is the autumn DST night in Copenhagen: 02:00-03:00 local happens twice.
FIRST_PASS = datetime(2026, 10, 25, 0, 50, tzinfo=UTC)  # 02:50 CEST
SECOND_PASS = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET, a real 20 minutes later


def rename(state: MicrobizzState, record_id: int, name: str) -> None:
    """A user edits a customer now (by the simulator's clock)."""
    table = state.tables["customer"]
    table.put(record_id, {**table.get(record_id), "name": name}, state.now())


async def staged_names(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(StagedRecord.source_id, StagedRecord.payload))
        return {sid: payload.get("name") for sid, payload in rows}


async def test_incremental_run_catches_a_change_in_the_watermarks_own_second(engine: AsyncEngine) -> None:
    """A record changed in the same second as the previous scan's receipt time is staged by the next run."""
    clock = ManualClock(datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC))
    async with microbizz(SMALL_WORLD, clock=clock) as (state, url):
        await extract_all(engine, settings_for(url), "run-1", streams=["customers"])
        rename(state, FIRST_CUSTOMER, "Changed in the same second")  # the clock has not moved
        clock.advance(minutes=5)
        await extract_all(engine, settings_for(url), "run-2", streams=["customers"])
    assert (await staged_names(engine))[str(FIRST_CUSTOMER)] == "Changed in the same second"


async def test_incremental_run_catches_a_change_in_the_repeated_dst_hour(engine: AsyncEngine) -> None:
    """A change at 02:10 in the second pass of the autumn hour is staged though the last scan began at 02:50."""
    clock = ManualClock(FIRST_PASS)
    async with microbizz(SMALL_WORLD, clock=clock, timezone="Europe/Copenhagen") as (state, url):
        await extract_all(engine, settings_for(url), "run-1", streams=["customers"])
        clock.moment = SECOND_PASS
        rename(state, FIRST_CUSTOMER, "Changed at 02:10 CET")
        clock.advance(minutes=1)
        await extract_all(engine, settings_for(url), "run-2", streams=["customers"])
        second = calls_of(state, "GetCustomersByLastChange")[-1]
    assert (second["changedate"], second["changetime"]) == ("2026-10-25", "01:50:00")
    assert (await staged_names(engine))[str(FIRST_CUSTOMER)] == "Changed at 02:10 CET"


@pytest.mark.parametrize("wording", ["Session data expired, please start over", "Ugyldig nøgle"])
async def test_expired_resumekey_restarts_the_sequence_whatever_its_wording(engine: AsyncEngine, wording: str) -> None:
    """A stored resumekey refused (any msg) while the same date/time without it works restarts the sequence."""
    clock = ManualClock(datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC))
    options = {"chunk_size": 30, "resumekey_lifetime_seconds": 600, "resumekey_expired_msg": wording, "clock": clock}
    async with microbizz(SMALL_WORLD, **options) as (state, url):
        settings = settings_for(url, commit_rows=1)  # a transaction per chunk, so the kill lands mid-sequence
        with suppress(Killed):
            await extract_all(engine, settings, "run-1", streams=["invoice_lines"], progress=kill_after(2))
        clock.advance(hours=2)
        start = len(state.request_log)
        result = await extract_all(engine, settings, "run-2", streams=["invoice_lines"])
        calls = calls_of(state, LINES, start)
        truth = truth_of(state, "order_line")
    assert calls[0]["resumekey"] and calls[1].get("resumekey") is None
    assert calls[1]["changedate"] == calls[0]["changedate"] == "1970-01-01"
    counts = result["invoice_lines"].counts
    assert result["invoice_lines"].complete and counts.calls == counts.pages + 1
    async with engine.connect() as conn:
        lines = set(
            (await conn.execute(select(StagedRecord.source_id).where(StagedRecord.entity == "order_line"))).scalars()
        )
    assert {("order_line", sid) for sid in lines} == truth


async def test_restarts_after_refused_resumekeys_are_bounded(engine: AsyncEngine) -> None:
    """Keys that never survive a second call end the stream after resumekey_restarts restarts, not in a loop."""
    async with microbizz(SMALL_WORLD, chunk_size=30, resumekey_lifetime_seconds=0) as (state, url):
        settings = settings_for(url, options={"resumekey_restarts": 2})
        async with HttpTransport(settings) as transport:
            client = MicrobizzClient(settings, transport)
            await client.open()
            with pytest.raises(ProtocolError, match="after 2 restarts"):
                await extract_stream(engine, CustomersStream(client, settings), source="mbz", run_id="run-1")
        calls = calls_of(state, "GetCustomersByLastChange")
    assert len(calls) == 1 + 2 * 2 + 1  # first chunk; per restart a refused key and a keyless call; last refusal


async def test_a_command_refused_with_and_without_the_key_is_its_own_error(engine: AsyncEngine) -> None:
    """When the keyless call fails too, the command is the problem: its own error is raised, no restart."""
    async with microbizz(SMALL_WORLD) as (state, url):
        settings = settings_for(url)
        async with HttpTransport(settings) as transport:
            client = MicrobizzClient(settings, transport)
            await client.open()
            stream = CustomersStream(client, settings)
            cursor = {"changedate": "31-31-2025", "changetime": "00:00:00", "resumekey": "abc.def"}
            with pytest.raises(BadRequest, match="changedate is not a date"):
                await stream.fetch(cursor)
        calls = calls_of(state, "GetCustomersByLastChange")
    assert [c.get("resumekey") for c in calls] == ["abc.def", None] and stream.restarts == 0


async def test_unrecognised_envelope_failure_is_retried_then_reported_not_as_bad_credentials() -> None:
    """An envelope refused in unknown words is retried envelope_attempts times, then raised as a server error."""
    sent = []

    async def endpoint(request: web.Request) -> web.Response:
        sent.append(1)
        return web.json_response({"status": 0, "msg": "Fejl 0x1F i modul sync"})

    app = web.Application()
    app.router.add_post(PATH, endpoint)
    async with TestServer(app, host="127.0.0.1") as server:
        settings = settings_for(str(server.make_url(PATH)), options={"envelope_attempts": 3})
        async with HttpTransport(settings) as transport:
            with pytest.raises(UnrecognisedEnvelopeFailure) as caught:
                await MicrobizzClient(settings, transport).open()
    assert len(sent) == 3 and not isinstance(caught.value, AuthenticationError)
    assert caught.value.kind == "server_error" and "Fejl 0x1F i modul sync" in str(caught.value)


async def test_deleted_flag_records_from_the_server_are_tombstones(engine: AsyncEngine) -> None:
    """Records the simulator serves with deleted 1 are reported by is_deleted; the others are not."""
    async with microbizz(SMALL_WORLD, chunk_size=1000) as (state, url):
        state.soft_delete("customer", FIRST_CUSTOMER)
        settings = settings_for(url)
        async with HttpTransport(settings) as transport:
            client = MicrobizzClient(settings, transport)
            await client.open()
            stream = CustomersStream(client, settings)
            page = await stream.fetch(stream.start(None))
    flagged = {record["id"] for record in page.records if stream.is_deleted(record)}
    assert FIRST_CUSTOMER in flagged
    assert flagged == {record["id"] for record in page.records if record["deleted"] == 1}
    assert 0 < len(flagged) < len(page.records) / 10


async def deleted_ids(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        query = select(StagedRecord.source_id).where(StagedRecord.deleted_at.is_not(None))
        return set((await conn.execute(query)).scalars())


async def test_a_deleted_flag_record_is_staged_as_deleted(engine: AsyncEngine) -> None:
    """End to end: a customer soft-deleted between runs is staged by the incremental run and marked deleted."""
    async with microbizz(SMALL_WORLD) as (state, url):
        await extract_all(engine, settings_for(url), "run-1", streams=["customers"])
        assert str(FIRST_CUSTOMER) not in await deleted_ids(engine)
        state.soft_delete("customer", FIRST_CUSTOMER)
        result = await extract_all(engine, settings_for(url), "run-2", streams=["customers"])
    assert str(FIRST_CUSTOMER) in await deleted_ids(engine)
    assert result["customers"].counts.deleted == 1


async def test_a_hard_deleted_record_is_marked_deleted_by_the_full_scan_only(engine: AsyncEngine) -> None:
    """A customer removed entirely stays live through an incremental run; the next full scan marks it deleted."""
    async with microbizz(SMALL_WORLD) as (state, url):
        await extract_all(engine, settings_for(url), "run-1", streams=["customers"])
        before = await deleted_ids(engine)
        state.hard_delete("customer", FIRST_CUSTOMER)
        await extract_all(engine, settings_for(url), "run-2", streams=["customers"])
        after_incremental = await deleted_ids(engine)
        await extract_all(engine, settings_for(url), "run-3", streams=["customers"], full=True)
    assert str(FIRST_CUSTOMER) not in after_incremental and after_incremental == before
    assert await deleted_ids(engine) == before | {str(FIRST_CUSTOMER)}
