"""Hashes of content, not formatting: a server's pretty or compact JSON stages the same rows."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

import aiohttp
from sqlalchemy import insert

from etl.db import migrate
from etl.db.engine import create_engine
from etl.db.staging import StagedRecord
from etl.payload import JsonText, split_array
from etl.simulators.miclinik import MiclinikOptions
from jobs.extract import run_extract
from tests.support import shipped_settings, simulators, source_for, staged_content

PRETTY, COMPACT = MiclinikOptions(production_mode=False), MiclinikOptions(production_mode=True)


def _settings(url: str, base_url: str):
    return shipped_settings(url).model_copy(update={"sources": [source_for("miclinik", base_url)]})


async def test_switching_between_pretty_and_compact_json_changes_nothing(migrated_url, engine) -> None:
    """The same records served pretty-printed, then compact (API_PRODUCTION_MODE switched on), count 0 changed."""
    async with simulators(["miclinik"], scale=120, options={"miclinik": PRETTY}) as pretty:
        first = await run_extract(_settings(migrated_url, pretty["miclinik"].base_url), full=True)
        assert first.status == "succeeded", first.failures()
        body = await _first_page(pretty["miclinik"].base_url)
    assert b'\n        "' in body, "the simulator did not pretty-print: the test proves nothing"
    before = await staged_content(engine)
    async with simulators(["miclinik"], scale=120, options={"miclinik": COMPACT}) as compact:
        second = await run_extract(_settings(migrated_url, compact["miclinik"].base_url), full=True)
    assert second.status == "succeeded", second.failures()
    assert sum(r.counts.changed + r.counts.new for r in second.results) == 0
    assert sum(r.counts.unchanged for r in second.results) == len(before)
    assert await staged_content(engine) == before


async def test_upgrading_rows_hashed_the_old_way_reports_nothing_changed(database_url) -> None:
    """Rows staged before 0004 (pretty text, SHA-256 of it) are rewritten so the next run counts 0 changed."""
    migrate.upgrade(database_url, "0003")
    async with simulators(["miclinik"], scale=80, options={"miclinik": PRETTY}) as sims:
        base_url = sims["miclinik"].base_url
        raw = split_array(await _first_page(base_url, limit=1000))
        now, run = datetime.now(UTC), str(uuid.uuid4())
        rows = [
            {"source": "miclinik", "entity": "customer", "source_id": str(int(r.value()["id"])),
             "payload": JsonText(r.decode()), "content_hash": hashlib.sha256(r).hexdigest(), "first_seen_run": run,
             "last_seen_run": run, "extracted_at": now}
            for r in raw
        ]  # fmt: skip
        engine = create_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(StagedRecord.__table__), rows)
        finally:
            await engine.dispose()
        migrate.upgrade(database_url)
        report = await run_extract(_settings(database_url, base_url), full=True, streams=["thirdparties"])
    thirdparties = next(r for r in report.results if r.stream == "thirdparties")
    assert thirdparties.counts.records == len(rows) > 0
    assert (thirdparties.counts.new, thirdparties.counts.changed) == (0, 0)


async def _first_page(base_url: str, limit: int = 5) -> bytes:
    params = {"limit": str(limit), "sortfield": "t.rowid", "sortorder": "ASC"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/thirdparties", params=params, headers={"DOLAPIKEY": "demo-dolibarr-key"}) as r,
    ):
        return await r.read()
