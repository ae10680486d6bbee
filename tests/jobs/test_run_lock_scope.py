"""What the run lock covers: every name of an SQLite file, the schema commands, and a run stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from structlog.testing import capture_logs

from etl.db import migrate
from etl.db.engine import create_engine
from etl.db.runlock import RunLocked, current_holder, lock_file, run_lock
from etl.db.staging import StagedRecord, SyncRun
from tests.support import ROOT, simulators
from tests.support.etl_processes import finished, start_etl


async def test_every_name_of_an_sqlite_file_is_refused_while_one_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A symlink to the database and its ``file:`` URIs (absolute, ``file:///``, relative) lock the real file: each
    is refused while the plain path holds the lock, and the URI forms create no stray ``file:`` folder."""
    real = tmp_path / "a" / "staging.db"
    url = f"sqlite+aiosqlite:///{real}"
    migrate.upgrade(url)
    (tmp_path / "link.db").symlink_to(real)
    monkeypatch.chdir(tmp_path)  # the relative URI resolves from here, and a stray folder would appear here
    others = [
        f"sqlite+aiosqlite:///{tmp_path / 'link.db'}",
        f"sqlite+aiosqlite:///file:{real}?uri=true",
        f"sqlite+aiosqlite:///file://{real}?uri=true&mode=rwc",
        "sqlite+aiosqlite:///file:a/staging.db?uri=true",
    ]
    async with run_lock(url, run_id="run-one", job="extract"):
        for other in others:
            # The holder's name is read through the other URL: it opens the same database, not a new one.
            with pytest.raises(RunLocked, match=r"^another run holds the lock: run run-one "):
                async with run_lock(other, run_id="run-two", job="extract"):
                    pytest.fail(f"{other} got the lock while {url} held it")
            assert lock_file(other) == lock_file(url), other
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "link.db"]
    assert lock_file(url) == real.with_name("staging.db.lock")


async def test_schema_changing_holder_needs_no_tables(database_url: str) -> None:
    """With ``schema_changes`` the lock is taken on an empty database and released after a downgrade dropped its
    holder table; while held it refuses every other run."""
    async with run_lock(database_url, run_id="upgrading", job="db upgrade", schema_changes=True):
        migrate.upgrade(database_url)
        with pytest.raises(RunLocked):
            async with run_lock(database_url, run_id="extracting", job="extract"):
                pytest.fail("a run started during a migration")
    with capture_logs() as logs:
        async with run_lock(database_url, run_id="downgrading", job="db downgrade", schema_changes=True):
            assert (await current_holder(database_url)).job == "db downgrade"
            migrate.downgrade(database_url, "base")
    assert migrate.current(database_url) == ""
    assert [e for e in logs if e["log_level"] == "warning"] == []  # no holder row to clear once its table is gone


def _etl_env(tmp_path: Path, settings: dict | None = None, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    if settings is not None:
        path = tmp_path / "settings.yaml"
        path.write_text(yaml.safe_dump(settings))
        env["ETL_SETTINGS"] = str(path)
    if database_url is not None:
        env["ETL_DATABASE_URL"] = database_url
    return env


async def _etl(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run ``etl ARGS`` in a process of its own to its end: exit code and stderr."""
    out = tmp_path / "-".join(args)
    process = start_etl(list(args), env, out.with_suffix(".out"), out.with_suffix(".err"))
    return await finished(process), out.with_suffix(".err").read_text()


async def test_db_upgrade_and_downgrade_are_refused_while_a_run_holds_the_lock(
    tmp_path: Path, migrated_url: str
) -> None:
    """`etl db upgrade` and `etl db downgrade` take the run lock: exit 1 naming the holder while an extract holds
    it, the schema untouched; once it is free they migrate."""
    env = _etl_env(tmp_path, database_url=migrated_url)
    head = f"{migrate.head_revision()} (head)"
    async with run_lock(migrated_url, run_id="extracting", job="extract"):
        for args in (["db", "downgrade", "base"], ["db", "upgrade"]):
            code, err = await _etl(tmp_path, env, *args)
            lines = err.strip().splitlines()
            assert code == 1 and len(lines) == 1, err
            assert lines[0].startswith("error: another run holds the lock: run extracting (extract) on "), err
    assert migrate.current(migrated_url) == head
    assert (await _etl(tmp_path, env, "db", "downgrade", "base"))[0] == 0
    assert migrate.current(migrated_url) == ""
    assert (await _etl(tmp_path, env, "db", "upgrade"))[0] == 0
    assert migrate.current(migrated_url) == head


async def test_sigterm_closes_a_running_extract_and_frees_the_lock(tmp_path: Path, migrated_url: str) -> None:
    """SIGTERM stops `etl extract` as Ctrl-C does: it exits 130 within seconds, its run row closed as failed
    ("interrupted"), and the next run gets the lock."""
    settings = yaml.safe_load((ROOT / "settings.yaml").read_text())
    async with simulators(["miclinik"], scale=200) as sims:
        settings["database_url"] = migrated_url
        # Small pages at a few requests a second: the extract is still running when the signal comes.
        settings["sources"] = [
            s | {"base_url": sims.base_urls["miclinik"], "page_size": 10, "rate_limit": 5}
            for s in settings["sources"]
            if s["kind"] == "miclinik"
        ]
        out = tmp_path / "extract"
        process = start_etl(["extract"], _etl_env(tmp_path, settings), out.with_suffix(".out"), out.with_suffix(".err"))
        engine = create_engine(migrated_url)
        try:
            await _wait_for_staged_page(engine, process)
            os.kill(process.pid, signal.SIGTERM)
            started = time.monotonic()
            code = await finished(process, timeout=10)
            took = time.monotonic() - started
            async with engine.connect() as conn:
                run = (await conn.execute(select(SyncRun))).one()
        finally:
            if process.exitcode is None:
                process.kill()
            await engine.dispose()
    assert code == 130 and took < 3, (code, took, out.with_suffix(".err").read_text())
    assert run.status == "failed" and run.finished_at is not None and "interrupted" in run.error, run
    async with run_lock(migrated_url, run_id="next", job="extract"):
        pass


async def _wait_for_staged_page(engine, process) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.exitcode is None, "the extract ended before staging a page"
        async with engine.connect() as conn:
            if await conn.scalar(select(StagedRecord.id).limit(1)) is not None:
                return
        await asyncio.sleep(0.03)
    raise AssertionError("the extract staged no page within 20 s")
