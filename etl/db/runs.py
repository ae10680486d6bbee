"""Recording runs: one row per job execution, opened at start and closed with its counts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from etl.db.engine import create_engine, session_factory
from etl.db.staging import SyncRun
from etl.redaction import redact


def new_run_id() -> str:
    return str(uuid.uuid4())


async def open_run(engine: AsyncEngine, job: str, trigger: str, run_id: str | None = None) -> str:
    run_id = run_id or new_run_id()
    async with session_factory(engine)() as session, session.begin():
        session.add(
            SyncRun(id=run_id, job=job, trigger=trigger, started_at=datetime.now(UTC), status="running", counts={})
        )
    return run_id


async def close_run(
    engine: AsyncEngine, run_id: str, status: str, counts: dict[str, Any], error: str | None = None
) -> None:
    """Finish a run; the error text is redacted before it reaches the database."""
    async with session_factory(engine)() as session, session.begin():
        await session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(
                status=status,
                counts=counts,
                error=redact(error) if error else None,
                finished_at=datetime.now(UTC),
            )
        )


async def mark_abandoned(engine: AsyncEngine, *, found_by: str) -> list[str]:
    """Mark every run still ``running``, other than ``found_by``, ``abandoned``; their ids.

    Called by a job that has just taken the run lock (etl.db.runlock): a run can only be running
    under the lock, so these were left by holders that died (killed, crashed, lost the machine)."""
    now = datetime.now(UTC)
    # Status says abandoned; the note says when it was found so, first, as `etl runs` shows 60 characters.
    note = f"its process died; found at {now:%Y-%m-%d %H:%M:%S} UTC by run {found_by}"
    async with session_factory(engine)() as session, session.begin():
        result = await session.execute(
            update(SyncRun)
            .where(SyncRun.status == "running", SyncRun.id != found_by)
            .values(status="abandoned", finished_at=now, error=note)
            .returning(SyncRun.id)
        )
        return list(result.scalars())


async def recent_runs(url: str, limit: int = 20) -> list[SyncRun]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            result = await session.execute(select(SyncRun).order_by(SyncRun.started_at.desc()).limit(limit))
            return list(result.scalars())
    finally:
        await engine.dispose()
