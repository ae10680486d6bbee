"""Held deletions: list what waits for an operator, accept one stream's set.

The same two entry points serve ``etl deletions list|accept`` and every later job (nightly
sync, scheduler): a held set is applied only by :func:`accept`, exactly as recorded at hold
time minus the rows seen since (:mod:`etl.pipeline.held_deletions`).

Accepting writes staging, so it holds the run lock (:mod:`etl.db.runlock`) like any run:
refused with :class:`~etl.db.runlock.RunLocked` while an extract is going, since that
extract's scan may be about to see some of the held rows.
"""

from __future__ import annotations

import contextlib

from etl.db.engine import create_engine, session_factory
from etl.db.runlock import HeldLock, run_lock
from etl.db.runs import new_run_id
from etl.pipeline.held_deletions import Acceptance, HeldSet, NothingHeld, accept_hold, pending_holds
from etl.settings import Settings

__all__ = ["NothingHeld", "accept", "held"]


async def held(settings: Settings, *, id_limit: int | None = 50) -> list[HeldSet]:
    """Every pending hold with its ids (up to ``id_limit``; None for all) and sample payloads."""
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            return await pending_holds(session, id_limit=id_limit)
    finally:
        await engine.dispose()


async def accept(
    settings: Settings, target: str, hold_id: int | None = None, *, lock: HeldLock | None = None
) -> Acceptance:
    """Apply the pending hold of ``SOURCE.STREAM`` (the one numbered ``hold_id`` when given);
    :class:`NothingHeld` when there is none or it is no longer pending.

    Takes the run lock, unless the calling job already holds it and passes it as ``lock``."""
    source, _, stream = target.partition(".")
    if not source or not stream:
        raise ValueError(f"expected SOURCE.STREAM, got {target!r}")
    taken = (
        contextlib.nullcontext(lock)
        if lock is not None
        else run_lock(settings.database_url, run_id=new_run_id(), job="deletions accept")
    )
    async with taken:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                return await accept_hold(session, source, stream, hold_id)
        finally:
            await engine.dispose()
