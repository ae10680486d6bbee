"""A run killed with SIGKILL at random points resumes to exactly the staging of an uninterrupted run, and is
marked abandoned by the next run."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
from pathlib import Path

import yaml
from sqlalchemy import func, select

from etl.db import migrate
from etl.db.engine import create_engine
from etl.db.staging import StagedRecord, StreamState, SyncRun
from etl.pipeline.state import Scan
from etl.pipeline.state import StreamState as ScanState
from etl.sources.billmanager import SOURCE as BILLMANAGER
from tests.support import ROOT, simulators, staged_content
from tests.support.etl_processes import finished, start_etl

KINDS = ["miclinik", "mikrobill", "microbizz", "billmanager"]
KILLS = 10


def _settings_file(tmp_path: Path, base_urls: dict[str, str], database_url: str, name: str) -> Path:
    data = yaml.safe_load((ROOT / "settings.yaml").read_text())
    data["database_url"] = database_url
    for source in data["sources"]:
        # miclinik answers fastest: small pages keep its scans long enough for kills to land inside them.
        page_size = 10 if source["kind"] == "miclinik" else 50
        source.update(base_url=base_urls[source["kind"]], page_size=page_size, backoff_initial=0.01, backoff_max=0.05)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def _etl(settings: Path, *args: str, kill_at: tuple[str, int] | None = None) -> int | None:
    """Run ``etl`` in a process of its own (tests.support.etl_processes: forked, so twenty runs do not spend
    twenty seconds importing); with ``kill_at=(database_url, n)``, SIGKILL it once the running run has staged
    ``n`` records (observed in the database, so the kill lands where the work is, whatever the machine's speed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")} | {"ETL_SETTINGS": str(settings)}
    # A run killed before stays `running` until this one takes the run lock: only this process's run counts.
    earlier = await _run_ids(kill_at[0]) if kill_at else set()
    process = start_etl(["--log-format", "json", *args], env, Path(os.devnull), Path(os.devnull))
    if kill_at is None:
        return await finished(process, 600)
    url, target = kill_at
    engine = create_engine(url)
    try:
        while process.exitcode is None:
            if await _staged_by_running_run(engine, earlier) >= target:
                process.kill()
                await finished(process)
                return None
            await asyncio.sleep(0.02)
    finally:
        await engine.dispose()
    return process.exitcode


async def _run_ids(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set((await conn.execute(select(SyncRun.id))).scalars())
    finally:
        await engine.dispose()


async def _staged_by_running_run(engine, earlier: set[str]) -> int:
    running = select(SyncRun.id).where(SyncRun.status == "running", SyncRun.id.not_in(earlier)).limit(1)
    async with engine.connect() as conn:
        query = (
            select(func.count())
            .select_from(StagedRecord)
            .where(StagedRecord.last_seen_run == running.scalar_subquery())
        )
        return int((await conn.execute(query)).scalar_one())


async def _checkpoints(url: str, source: str, key: str) -> dict[str, int]:
    """stream -> ``key`` of the cursor committed so far (0 when the stream has finished or not started)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(StreamState.stream, StreamState.state).where(StreamState.source == source))
            return {stream: _committed(state, key) for stream, state in rows}
    finally:
        await engine.dispose()


def _committed(state: dict | None, key: str) -> int:
    scan = ScanState.from_json(state).scan
    cursor = scan.cursors[0] if scan else None
    return int((cursor or {}).get(key) or 0)


def _page_numbers(log: list[dict]) -> list[tuple[str, int]]:
    """(function, p_num) of each BILLmanager list call in a request log."""
    funcs = {stream.func for stream in BILLMANAGER.streams}
    return [
        (entry["func"], int(entry["p_num"]))
        for entry in log
        if entry.get("func") in funcs and str(entry.get("p_num") or "").isdigit()
    ]


def _by_function(checkpoints: dict[str, int]) -> dict[str, int]:
    """func -> the lowest page committed by its streams: users and staff_users both read func=user, and
    one not started yet (no state row) or finished begins at page 1 (0 here)."""
    lowest: dict[str, int] = {}
    for stream in BILLMANAGER.streams:
        lowest[stream.func] = min(lowest.get(stream.func, 1 << 30), checkpoints.get(stream.name, 0))
    return lowest


async def _scans(url: str, source: str) -> dict[str, Scan]:
    """stream -> its scan in progress, as committed so far."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(StreamState.stream, StreamState.state).where(StreamState.source == source))
            return {stream: scan for stream, state in rows if (scan := ScanState.from_json(state).scan)}
    finally:
        await engine.dispose()


def _keyset_pages(log: list[dict]) -> list[tuple[str, int, int | None]]:
    """(resource, after, upto) of each miclinik list page asked in a request log (partition probes left out)."""
    pages = []
    for entry in log:
        query = entry.get("query") or {}
        text = json.dumps(query) if not isinstance(query, str) else query
        after, upto = re.search(r"t\.rowid:>:(\d+)", text), re.search(r"t\.rowid:<=:(\d+)", text)
        resource = str(entry.get("path", "")).rstrip("/").rsplit("/", 1)[-1]
        if after and str(query.get("sortorder", "ASC")).upper() != "DESC":
            pages.append((resource, int(after.group(1)), int(upto.group(1)) if upto else None))
    return pages


def _refetched(pages: list[tuple[str, int, int | None]], scans: dict[str, Scan], full: bool) -> list[str]:
    """Pages of a committed checkpoint asked again: each partition continues at its own cursor, and a
    finished partition of the scan in progress is never asked again."""
    problems = []
    for resource, after, upto in pages:
        scan = scans.get(resource)
        if scan is None or (full and scan.mode == "incremental"):  # this run begins a new scan
            continue
        if not scan.partitioned:  # killed before its split: no page committed, this run splits it
            continue
        ranges = scan.ranges or [{"upto": None}]
        partition = next((n for n, first in enumerate(ranges) if first.get("upto") == upto), None)
        if partition is None:
            problems.append(f"{resource}: a page after {after} up to {upto} is in no partition of the scan")
            continue
        cursor = scan.cursors[partition]
        if cursor is None:
            problems.append(f"{resource}: partition {partition} was finished, yet its page after {after} was asked")
        elif after < int(cursor["after"]):
            problems.append(f"{resource}: the page after {after} was staged before (cursor {cursor['after']})")
    return problems


async def test_sigkill_at_random_points_then_resume_matches_uninterrupted_run(
    tmp_path: Path, database_url: str
) -> None:
    """Ten SIGKILLs at random amounts of staged work, then a finishing run: staging equals a clean run's, and no
    miclinik or BILLmanager page staged before a kill is requested again afterwards."""
    reference_url = f"sqlite+aiosqlite:///{tmp_path / 'reference.db'}"
    migrate.upgrade(database_url)
    migrate.upgrade(reference_url)
    rng = random.Random(20261123)
    async with simulators(KINDS, scale=1500, seed=11) as sims:
        killed = _settings_file(tmp_path, sims.base_urls, database_url, "killed")
        reference = _settings_file(tmp_path, sims.base_urls, reference_url, "reference")
        assert await _etl(reference, "extract") == 0
        miclinik_log, billmanager_log = sims["miclinik"].state.request_log, sims["billmanager"].state.request_log
        kills, resumed, partitioned = 0, {"miclinik": 0, "billmanager": 0}, False
        for _ in range(KILLS * 3):
            keyset = await _scans(database_url, "miclinik")
            committed_pages = await _checkpoints(database_url, "billmanager", "p_num")
            page_numbers = _by_function(committed_pages)
            seen = len(miclinik_log), len(billmanager_log)
            # About half the runs force a full scan, so kills also land in scans that are not incremental.
            mode = ["--full"] if rng.random() < 0.5 else []
            code = await _etl(killed, "extract", *mode, kill_at=(database_url, rng.randint(1, 2500)))
            refetched = _refetched(_keyset_pages(miclinik_log[seen[0] :]), keyset, bool(mode))
            assert not refetched, refetched
            for func_name, p_num in _page_numbers(billmanager_log[seen[1] :]):
                assert p_num >= page_numbers.get(func_name, 0), f"billmanager {func_name} page {p_num} fetched again"
            resumed["miclinik"] += any(scan.pages for scan in keyset.values())
            partitioned |= any(len(scan.ranges) > 1 for scan in keyset.values())
            resumed["billmanager"] += any(committed_pages.values())
            if code is None:
                kills += 1
            elif kills >= KILLS:
                break
        assert kills >= KILLS, f"only {kills} runs were killed mid-way"
        assert all(resumed.values()), f"no kill landed mid-stream in some source: {resumed}"
        assert partitioned, "no kill landed in a miclinik scan split into partitions"
        assert await _etl(killed, "extract") == 0
        engine_a, engine_b = create_engine(database_url), create_engine(reference_url)
        try:
            assert await staged_content(engine_a) == await staged_content(engine_b)
            # Each killed run was marked abandoned by the run after it: none is left looking alive.
            async with engine_a.connect() as conn:
                statuses = [status for (status,) in await conn.execute(select(SyncRun.status))]
            assert "running" not in statuses and statuses.count("abandoned") >= KILLS, statuses
        finally:
            await engine_a.dispose()
            await engine_b.dispose()
