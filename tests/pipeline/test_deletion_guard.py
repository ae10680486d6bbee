"""The deletion guard on top of every stream: plausible deletions are marked exactly, implausible ones
are held with their reason and ids, and ``etl deletions accept`` applies exactly the held set."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import structlog
import yaml
from sqlalchemy import select
from typer.testing import CliRunner, Result

from etl.cli import app
from etl.db.engine import session_factory
from etl.db.staging import HeldDeletion, HeldDeletionRow, StagedRecord
from etl.payload import fingerprint
from etl.pipeline.held_deletions import NothingHeld, accept_hold, count_unseen
from etl.pipeline.staging_writes import Rejection, mark_deleted, reject_records, stage_records
from jobs.extract import run_extract
from tests.support import shipped_settings, simulators, source_for, staged_keys
from tests.toykind import KIND, SETTINGS


def _settings(url: str, base_url: str, **overrides: object):
    source = source_for(KIND, base_url, page_size=40, **overrides)
    return shipped_settings(url).model_copy(update={"sources": [source]})


async def _members(engine) -> set[str]:
    return {source_id for entity, source_id in await staged_keys(engine, KIND) if entity == "customer"}


async def test_genuine_deletion_of_one_percent_is_marked_exactly(migrated_url, engine) -> None:
    """With shipped defaults, 2 of 200 members gone from the server are marked deleted, nothing else, not held."""
    async with simulators([KIND], scale=200) as sims:
        settings = _settings(migrated_url, sims[KIND].base_url)
        assert (await run_extract(settings)).status == "succeeded"
        members = sims[KIND].state.members
        assert len(members) == 200
        gone = sorted(members)[7], sorted(members)[150]
        for member in gone:
            del members[member]
        report = await run_extract(settings)
    result = next(r for r in report.results if r.stream == "members")
    assert (result.status, result.counts.deleted) == ("succeeded", 2)
    assert await _members(engine) == {str(m) for m in members}


async def test_mass_deletion_is_held_with_its_reason_counts_and_ids(migrated_url, engine) -> None:
    """A complete scan missing 30 % of a 200-row stream deletes nothing: the stream ends held, the reason names
    the fraction check and the counts, the held set is exactly the missing ids, and the run is not a success."""
    async with simulators([KIND], scale=200) as sims:
        settings = _settings(migrated_url, sims[KIND].base_url)
        await run_extract(settings)
        members = sims[KIND].state.members
        gone = sorted(members)[::3][:60]
        for member in gone:
            del members[member]
        report = await run_extract(settings)
    result = next(r for r in report.results if r.stream == "members")
    assert result.status == "held" and result.counts.deleted == 0
    assert "max_delete_fraction 0.2" in result.error and "60 of 200 live rows" in result.error
    assert "(200 -> 140)" in result.error
    assert report.status == "partial" and any("members: deletions held" in line for line in report.failures())
    assert len(await _members(engine)) == 200
    assert await _held_ids(engine) == {str(m) for m in gone}


async def test_a_stream_left_empty_is_held_below_min_rows(migrated_url, engine) -> None:
    """A small stream (under min_rows_for_fraction) whose list comes back empty is held, not emptied."""
    async with simulators([KIND], scale=200) as sims:
        settings = _settings(migrated_url, sims[KIND].base_url)
        first = await run_extract(settings)
        plans = next(r for r in first.results if r.stream == "plans").counts.new
        assert 0 < plans < 50
        sims[KIND].state.plans.clear()
        report = await run_extract(settings)
    result = next(r for r in report.results if r.stream == "plans")
    assert result.status == "held" and result.counts.deleted == 0
    assert f"it would leave the stream empty (all {plans} live rows unseen)" in result.error
    assert len([key for key in await staged_keys(engine, KIND) if key[0] == "product"]) == plans


async def test_limits_come_from_settings(migrated_url, engine) -> None:
    """max_delete_fraction set to 0.5 lets a 30 % deletion through; min_rows_for_fraction above the stream's
    size does too."""
    async with simulators([KIND], scale=200) as sims:
        for overrides in ({"max_delete_fraction": 0.5}, {"min_rows_for_fraction": 500}):
            settings = _settings(migrated_url, sims[KIND].base_url, **overrides)
            await run_extract(settings)
            members = sims[KIND].state.members
            for member in sorted(members)[::3][:30]:
                del members[member]
            result = next(r for r in (await run_extract(settings)).results if r.stream == "members")
            assert (result.status, result.counts.deleted) == ("succeeded", 30)


async def test_accept_applies_the_held_set_minus_rows_seen_since(migrated_url, engine) -> None:
    """Accepting marks exactly the held rows deleted, except one that a later scan saw again."""
    async with simulators([KIND], scale=200) as sims:
        settings = _settings(migrated_url, sims[KIND].base_url)
        await run_extract(settings)
        members = sims[KIND].state.members
        gone = sorted(members)[:80]
        for member in gone:
            del members[member]
        await run_extract(settings)
    seen_again = str(gone[5])
    async with session_factory(engine)() as session, session.begin():
        record = {"id": int(seen_again), "name": "back"}
        await stage_records(session, source=KIND, entity="customer", run_id="later", records=[
            (seen_again, *fingerprint(record))], scan_mark="later-pass")  # fmt: skip
    async with session_factory(engine)() as session, session.begin():
        done = await accept_hold(session, KIND, "members")
    assert (done.applied, done.held, done.seen_since) == (79, 80, 1)
    assert await _members(engine) == {str(m) for m in members} | {seen_again}
    async with engine.connect() as conn:
        status = (await conn.execute(select(HeldDeletion.status))).scalars().all()
    assert status == ["accepted"]


async def test_etl_deletions_list_and_accept_commands(tmp_path: Path, migrated_url, engine) -> None:
    """`etl extract` exits 1 on a hold; `etl deletions list` shows the set with ids and a sample payload;
    `etl deletions accept toybill.members` applies it; a second accept says nothing is held (exit 2)."""
    async with simulators([KIND], scale=200) as sims:
        config = tmp_path / "settings.yaml"
        source = {**SETTINGS, "base_url": sims[KIND].base_url, "page_size": 40}
        config.write_text(yaml.safe_dump({"database_url": migrated_url, "sources": [source]}))
        first = await _cli(config, "extract")
        assert first.exit_code == 0, first.output
        members = sims[KIND].state.members
        gone = sorted(members)[-70:]
        for member in gone:
            del members[member]
        held = await _cli(config, "extract")
    assert held.exit_code == 1 and "deletions held" in held.stderr
    listing = await _cli(config, "deletions", "list")
    assert listing.exit_code == 0, listing.output
    assert "toybill.members (customer): 70 of 200 rows held" in listing.stdout
    assert str(gone[0]) in listing.stdout and f'sample {gone[0]}: {{"id":{gone[0]}' in listing.stdout
    accepted = await _cli(config, "deletions", "accept", "toybill.members")
    assert accepted.exit_code == 0, accepted.output
    assert "70 of 70 held rows marked deleted" in accepted.stdout
    assert len(await _members(engine)) == 130
    again = await _cli(config, "deletions", "accept", "toybill.members")
    assert again.exit_code == 2, again.output
    assert "no deletions are held for toybill.members" in again.output


async def _cli(config: Path, *args: str) -> Result:
    """The `etl` command in this process (the toy kind is registered only here), off the event loop."""
    runner = CliRunner(env={"ETL_DATABASE_URL": None})
    try:
        return await asyncio.to_thread(runner.invoke, app, ["--settings", str(config), *args])
    finally:
        # The command configured structlog to print to the runner's stderr, closed once it returns.
        structlog.reset_defaults()


async def _held_ids(engine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(StagedRecord.source_id)
            .join(HeldDeletionRow, HeldDeletionRow.staged_id == StagedRecord.id)
            .join(HeldDeletion, HeldDeletion.id == HeldDeletionRow.hold_id)
            .where(HeldDeletion.status == "pending")
        )
        return set(rows.scalars())


async def test_a_rejected_record_the_server_still_sends_is_not_deleted(engine) -> None:
    """A staged record that comes back malformed (rejected, its id known) was seen: a full scan keeps it."""
    record = {"id": 7, "name": "ok"}
    async with session_factory(engine)() as session, session.begin():
        await stage_records(session, source="s", entity="customer", run_id="r1", records=[("7", *fingerprint(record))],
                            scan_mark="pass-1")  # fmt: skip
        await reject_records(session, source="s", entity="customer", run_id="r2", scan_mark="pass-2",
                             rejections=[Rejection("7", "{\"id\": 7, \"name\": \"\\u0000\"}", "NUL in a string")])  # fmt: skip
        assert await count_unseen(session, source="s", entity="customer", markers=["pass-2"]) == 0
        assert await mark_deleted(session, source="s", entity="customer", markers=["pass-2"]) == 0


async def test_accepting_a_superseded_hold_is_refused(migrated_url, engine) -> None:
    """`accept --hold N` applies hold N only: once a later scan held again, N is refused and nothing changes."""
    async with simulators([KIND], scale=200) as sims:
        settings = _settings(migrated_url, sims[KIND].base_url)
        await run_extract(settings)
        members = sims[KIND].state.members
        for member in sorted(members)[:60]:
            del members[member]
        await run_extract(settings)
        first_hold = await _pending_hold_id(engine)
        for member in sorted(members)[:10]:
            del members[member]
        await run_extract(settings)
    async with session_factory(engine)() as session, session.begin():
        with pytest.raises(NothingHeld, match=f"hold {first_hold} of toybill.members is no longer pending"):
            await accept_hold(session, KIND, "members", first_hold)
    assert len(await _members(engine)) == 200
    async with engine.connect() as conn:
        rows = (await conn.execute(select(HeldDeletionRow.hold_id).distinct())).scalars().all()
    assert rows == [first_hold + 1]  # the superseded hold's rows are gone, its record stays


async def _pending_hold_id(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(HeldDeletion.id).where(HeldDeletion.status == "pending"))).scalar_one()
