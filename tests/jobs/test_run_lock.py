"""One run at a time per database: a second run is refused at once naming the holder, and runs left
``running`` by dead holders are marked ``abandoned`` by the next holder."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select, text

from etl.db import migrate
from etl.db.engine import create_engine
from etl.db.runlock import RunLocked, RunLockLost, current_holder, lock_file, run_lock
from etl.db.runs import open_run
from etl.db.staging import RunLockHolder, StagedRecord, SyncRun
from etl.settings import Settings
from etl.sources import REGISTRY
from jobs.deletions import NothingHeld, accept
from jobs.extract import run_extract
from tests.support import ROOT, shipped_settings, simulators, source_for, staged_keys, truth_keys
from tests.support.etl_processes import finished, start_etl

KINDS = ["miclinik", "mikrobill", "microbizz", "billmanager"]
TRIALS = 10


async def test_second_lock_is_refused_at_once_naming_the_holder(migrated_url: str) -> None:
    """While one job holds the lock, another's attempt fails at once with RunLocked naming run, job, host and pid."""
    async with run_lock(migrated_url, run_id="run-one", job="extract"):
        started = time.monotonic()
        with pytest.raises(RunLocked) as refused:
            async with run_lock(migrated_url, run_id="run-two", job="extract"):
                pytest.fail("a second holder got the lock")
        assert time.monotonic() - started < 2
        message = str(refused.value)
        assert message.startswith("another run holds the lock: run run-one (extract) on ")
        assert f" pid {os.getpid()} since " in message
        assert (await current_holder(migrated_url)).run_id == "run-one"


async def test_lock_is_released_on_exit_even_after_an_error(migrated_url: str, engine) -> None:
    """A block that ends, normally or by an exception, lets the next job take the lock and clears its holder row."""
    with pytest.raises(ValueError):
        async with run_lock(migrated_url, run_id="run-one", job="extract"):
            raise ValueError("boom")
    async with run_lock(migrated_url, run_id="run-two", job="deletions accept"):
        assert (await current_holder(migrated_url)).job == "deletions accept"
    assert await current_holder(migrated_url) is None
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(RunLockHolder)) == 0


async def test_taking_the_lock_marks_runs_left_running_abandoned(migrated_url: str, engine) -> None:
    """Runs still ``running`` when the lock is taken (their holder died) become ``abandoned`` with when; the
    holder's own run is left alone."""
    dead = await open_run(engine, "extract", "manual")
    async with run_lock(migrated_url, run_id="new-run", job="extract"):
        own = await open_run(engine, "extract", "manual", "new-run")
        async with engine.connect() as conn:
            rows = {r.id: r for r in await conn.execute(select(SyncRun))}
    assert rows[dead].status == "abandoned" and rows[dead].finished_at is not None
    assert rows[dead].error.startswith("its process died; found at ") and rows[dead].error.endswith("by run new-run")
    assert rows[own].status == "running"


async def test_accepting_held_deletions_is_refused_while_a_run_holds_the_lock(migrated_url: str) -> None:
    """`etl deletions accept` writes staging, so it takes the lock too: refused while an extract holds it."""
    async with run_lock(migrated_url, run_id="extracting", job="extract"):
        with pytest.raises(RunLocked, match="run extracting"):
            await accept(shipped_settings(migrated_url), "miclinik.orders")
    with pytest.raises(NothingHeld):
        await accept(shipped_settings(migrated_url), "miclinik.orders")


async def test_losing_the_lock_stops_a_running_extract_and_closes_its_run(migrated_url: str, engine) -> None:
    """A lock lost mid-run (PostgreSQL: its connection terminated; SQLite: its lock file removed) stops the extract
    within seconds with RunLockLost, closes its run as failed naming the lost lock, and frees the lock."""
    async with simulators(["miclinik"], scale=200) as sims:
        source = source_for("miclinik", sims["miclinik"].base_url, page_size=10, rate_limit=5)
        task = asyncio.create_task(run_extract(Settings(database_url=migrated_url, sources=[source])))
        await _wait_for_committed_page(engine, task)
        await _lose_lock(migrated_url, engine)
        started = time.monotonic()
        with pytest.raises(RunLockLost, match=r"PostgreSQL connection dropped|lock file .* was removed"):
            await asyncio.wait_for(task, 30)
        assert time.monotonic() - started < 5
    async with engine.connect() as conn:
        run = (await conn.execute(select(SyncRun))).one()
    assert run.status == "failed" and "lost the run lock" in run.error and run.finished_at is not None
    async with run_lock(migrated_url, run_id="next", job="extract"):
        pass


async def _lose_lock(url: str, engine) -> None:
    if url.startswith("sqlite"):
        lock_file(url).unlink()
        return
    async with engine.connect() as conn:
        # pg_locks spans the server: this database's advisory lock only.
        pid = await conn.scalar(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        )
        assert await conn.scalar(text(f"SELECT pg_terminate_backend({pid})"))


async def _wait_for_committed_page(engine, task: asyncio.Task) -> None:
    while not await _staged_by(engine):
        assert not task.done(), "the extract ended before committing a page"
        await asyncio.sleep(0.05)


async def _staged_by(engine) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(StagedRecord).join(SyncRun, SyncRun.id == StagedRecord.last_seen_run)
        return int(await conn.scalar(query.where(SyncRun.status == "running")) or 0)


# --- Acceptance 1: two `etl extract` processes --------------------------------------------------------------


def _settings_file(tmp_path: Path, base_urls: dict[str, str], database_url: str, name: str, rate: float) -> Path:
    data = yaml.safe_load((ROOT / "settings.yaml").read_text())
    data["database_url"] = database_url
    for source in data["sources"]:
        # Small pages at a few requests a second keep the first extract busy long after the second has started.
        source.update(base_url=base_urls[source["kind"]], page_size=10, rate_limit=rate, backoff_initial=0.01)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class _Etl:
    """``etl`` commands against one settings file, each a process of its own; output kept under ``tmp_path``."""

    def __init__(self, settings: Path) -> None:
        self.settings, self.count = settings, 0
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")} | {"ETL_SETTINGS": str(settings)}

    def start(self, *args: str) -> tuple[BaseProcess, Path]:
        """Start ``etl --log-format json ARGS``; the process and the file its stderr goes to."""
        self.count += 1
        out = self.settings.with_name(f"{self.settings.stem}-{self.count}-{args[0]}")
        stdout, stderr = out.with_suffix(".out"), out.with_suffix(".err")
        return start_etl(["--log-format", "json", *args], self.env, stdout, stderr), stderr

    async def run(self, *args: str) -> tuple[int, str, str, float]:
        """Run ``etl ARGS`` to its end: exit code, stdout, stderr, seconds taken."""
        started = time.monotonic()
        process, stderr = self.start(*args)
        code = await finished(process)
        return code, stderr.with_suffix(".out").read_text(), stderr.read_text(), time.monotonic() - started


async def _holding_run(engine, process: BaseProcess, dead: list[str]) -> str:
    """The id of the running run, once it has committed a page (staged records it saw); a run killed
    before (``dead``) stays ``running`` until the new one takes the lock, and is not it."""
    query = (
        select(SyncRun.id)
        .join(StagedRecord, StagedRecord.last_seen_run == SyncRun.id)
        .where(SyncRun.status == "running", SyncRun.id.not_in(dead))
        .limit(1)
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.exitcode is None, "the first extract ended before committing a page"
        async with engine.connect() as conn:
            if run_id := await conn.scalar(query):
                return str(run_id)
        await asyncio.sleep(0.03)
    raise AssertionError("the first extract committed no page within 60 s")


async def test_two_extracts_one_runs_other_refused_killed_holder_abandoned(tmp_path: Path, database_url: str) -> None:
    """Ten times: a second `etl extract` started once the first has committed a page exits 1 at once naming the
    holder, leaving no run row; the first is SIGKILLed and the next run marks it abandoned; nothing is deleted."""
    migrate.upgrade(database_url)
    engine = create_engine(database_url)
    async with simulators(KINDS, scale=150, seed=5) as sims:
        etl = _Etl(_settings_file(tmp_path, sims.base_urls, database_url, "slow", rate=3))
        killed: list[str] = []
        first: BaseProcess | None = None
        try:
            for trial in range(TRIALS):
                first, first_err = etl.start("extract", "--full")
                holder = await _holding_run(engine, first, killed)
                checks = [etl.run("extract", "--full")] + ([etl.run("runs")] if trial == 0 else [])
                (code, _out, err, took), *table = await asyncio.gather(*checks)
                assert first.exitcode is None, f"trial {trial}: the first extract ended first: {first_err.read_text()}"
                assert code == 1 and took < 30, (code, took, err)
                assert err.strip().splitlines()[-1].startswith(f"error: another run holds the lock: run {holder} ")
                if table:
                    assert "running (holds lock)" in table[0][1] and f"run lock held by run {holder}" in table[0][1]
                first.kill()  # SIGKILL: nothing of it runs on, the next run finds its row still running
                assert await finished(first) == -signal.SIGKILL
                killed.append(holder)
            fast = _Etl(_settings_file(tmp_path, sims.base_urls, database_url, "fast", rate=200))
            code, _out, err, _took = await fast.run("extract")
            assert code == 0, err
            code, table, err, _took = await fast.run("runs")
            assert code == 0, err
        finally:
            if first is not None and first.exitcode is None:
                first.kill()
        async with engine.connect() as conn:
            statuses = dict((await conn.execute(select(SyncRun.id, SyncRun.status))).all())
        for kind in KINDS:  # what the servers still serve is staged live: no false deletion, nothing missed
            entities = {stream.entity for stream in REGISTRY[kind].streams}
            assert await staged_keys(engine, kind) == truth_keys(sims[kind].state, entities), kind
    await engine.dispose()
    assert len(statuses) == TRIALS + 1, "a refused run left a run row"
    assert all(statuses[run_id] == "abandoned" for run_id in killed), statuses
    assert "running" not in statuses.values() and sorted(statuses.values()).count("succeeded") == 1
    assert table.count("abandoned") >= TRIALS
