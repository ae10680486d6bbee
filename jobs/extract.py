"""The extract job: run bookkeeping around the engine.

It owns the database engine and the ``sync_runs`` row: opened at start, closed in
``finally`` whatever happens (a database error or an interrupt never leaves a run
``running`` for lack of trying), with the run id and job bound into the log context
for the run's duration only. Sources run side by side through
:func:`etl.pipeline.extract.extract_source`, which decides what each failure ends.

The run holds the database's run lock (:mod:`etl.db.runlock`) from before its row is
opened until after it is closed: a run refused the lock raises
:class:`~etl.db.runlock.RunLocked` and leaves no row at all (it never ran). A job that
runs extract as one of its steps takes the lock once and passes it in as ``lock``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.contextvars import bound_contextvars

from etl.db.engine import create_engine
from etl.db.runlock import HeldLock, run_lock
from etl.db.runs import close_run, new_run_id, open_run
from etl.pipeline.extract import RunProgress, describe, extract_source
from etl.pipeline.results import SourceResult, StreamResult
from etl.settings import Settings, SourceSettings

log = structlog.get_logger("jobs.extract")


@dataclass
class ExtractReport:
    run_id: str
    sources: list[SourceResult] = field(default_factory=list)
    error: str | None = None

    @property
    def results(self) -> list[StreamResult]:
        return [stream for source in self.sources for stream in source.streams]

    @property
    def retries(self) -> dict[str, int]:
        return {source.source: source.retries for source in self.sources}

    @property
    def status(self) -> str:
        failed = [r for r in self.results if r.failed]
        if self.error or (failed and len(failed) == len(self.results)):
            return "failed"
        return "partial" if failed else "succeeded"

    def failures(self) -> list[str]:
        lines = [f"{r.source}.{r.stream}: {r.error}" for r in self.results if r.failed]
        return lines + ([f"run: {self.error}"] if self.error else [])

    def counts(self) -> dict[str, dict[str, object]]:
        return {f"{r.source}.{r.stream}": r.counts.as_dict() | {"status": r.status} for r in self.results}


def select_sources(settings: Settings, names: Sequence[str] = ()) -> list[SourceSettings]:
    """The enabled sources, or exactly the named ones (an unknown name is a usage error)."""
    if not names:
        return [s for s in settings.sources if s.enabled]
    known = {s.name for s in settings.sources}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown source {', '.join(unknown)} (configured: {', '.join(sorted(known))})")
    return [settings.source(n) for n in names]


async def run_extract(
    settings: Settings,
    *,
    sources: Sequence[str] = (),
    streams: Sequence[str] = (),
    full: bool = False,
    trigger: str = "manual",
    progress: RunProgress | None = None,
    lock: HeldLock | None = None,
) -> ExtractReport:
    """Extract the chosen sources into staging and record the run.

    The run lock is taken for the run (:class:`~etl.db.runlock.RunLocked` at once when another
    run holds it) unless the caller already holds it and passes it as ``lock``."""
    chosen = select_sources(settings, sources)
    report = ExtractReport(new_run_id())
    with bound_contextvars(run_id=report.run_id, job="extract"):
        taken = (
            contextlib.nullcontext(lock)
            if lock is not None
            else run_lock(settings.database_url, run_id=report.run_id, job="extract")
        )
        async with taken as held:
            engine = create_engine(settings.database_url)
            try:
                await open_run(engine, "extract", trigger, report.run_id)
                try:
                    report.sources = await _extract_all(engine, chosen, report.run_id, streams, full, progress)
                except BaseException as exc:  # interrupted or a bug outside every source: still close the run
                    report.error = _failure(exc, held)
                    raise
                finally:
                    await _close(engine, report)
            finally:
                await engine.dispose()
    return report


async def _extract_all(
    engine: AsyncEngine,
    chosen: Sequence[SourceSettings],
    run_id: str,
    streams: Sequence[str],
    full: bool,
    progress: RunProgress | None,
) -> list[SourceResult]:
    return list(
        await asyncio.gather(
            *(extract_source(engine, s, run_id=run_id, streams=streams, full=full, progress=progress) for s in chosen)
        )
    )


def _failure(exc: BaseException, lock: HeldLock) -> str:
    if lock.lost:
        return f"stopped: lost the run lock ({lock.lost})"
    return describe(exc) if isinstance(exc, Exception) else f"interrupted ({type(exc).__name__})"


async def _close(engine: AsyncEngine, report: ExtractReport) -> None:
    try:
        await close_run(engine, report.run_id, report.status, report.counts(), "; ".join(report.failures()) or None)
    except Exception as exc:
        log.error("could not close the run row", error=describe(exc))
    else:
        log.info("run finished", status=report.status, streams=len(report.results))
