"""The extract job: owns the database engine and one HTTP session per source, runs the streams.

Sources run side by side; a source's streams run one after another. A fatal error ends
that source's run with a clear message while the other sources go on. One summary log
line per stream, one ``sync_runs`` row per run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.contextvars import bind_contextvars, bound_contextvars

from etl.db.engine import create_engine
from etl.db.runs import close_run, new_run_id, open_run
from etl.http.errors import FatalError, SourceError
from etl.http.transport import HttpTransport
from etl.logging import redact
from etl.pipeline.extract import ProgressCallback, StreamResult, extract_stream
from etl.pipeline.staging import StageCounts
from etl.settings import Settings, SourceSettings
from etl.sources import REGISTRY
from etl.sources.base import Stream

log = structlog.get_logger("jobs.extract")
PROGRESS_LOG_SECONDS = 30.0
# (source, stream, counts so far, retries so far on that source)
RunProgress = Callable[[str, str, StageCounts, int], None]


@dataclass
class ExtractReport:
    run_id: str
    results: list[StreamResult] = field(default_factory=list)
    retries: dict[str, int] = field(default_factory=dict)

    @property
    def status(self) -> str:
        failed = [r for r in self.results if r.status != "succeeded"]
        if not failed:
            return "succeeded"
        return "failed" if len(failed) == len(self.results) else "partial"

    def failures(self) -> list[str]:
        return [f"{r.source}.{r.stream}: {r.error}" for r in self.results if r.status != "succeeded"]


class _SourceStopped(Exception):
    """A fatal error in one stream ends the source: its later streams are not tried."""


def select_sources(settings: Settings, names: Sequence[str] = ()) -> list[SourceSettings]:
    """The enabled sources, or exactly the named ones (an unknown name is a usage error)."""
    if not names:
        return [s for s in settings.sources if s.enabled]
    known = {s.name for s in settings.sources}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown source {', '.join(unknown)} (configured: {', '.join(sorted(known))})")
    return [settings.source(n) for n in names]


async def extract_source(
    engine: AsyncEngine,
    source: SourceSettings,
    report: ExtractReport,
    *,
    streams: Sequence[str],
    full: bool,
    progress: RunProgress | None,
) -> list[StreamResult]:
    """Run the wanted streams of one source; a fatal error stops this source only."""
    definition = REGISTRY[source.kind]
    wanted = [s for s in definition.streams if not streams or s.name in streams]
    results: list[StreamResult] = []
    transport = HttpTransport(source)
    with bound_contextvars(source=source.name):
        try:
            async with transport:
                client = definition.client_class(source, transport)
                await client.open()
                try:
                    for stream_class in wanted:
                        stream = stream_class(client, source)
                        results.append(await _run_stream(engine, stream, source, report.run_id, full, progress))
                        if results[-1].fatal:
                            raise _SourceStopped(results[-1].error or "fatal error")
                finally:
                    await client.close()
        except (SourceError, _SourceStopped) as exc:
            message = redact(str(exc) if isinstance(exc, _SourceStopped) else f"{exc.kind}: {exc}")
            log.error("source failed", error=message)
            done = {r.stream for r in results}
            results += [
                StreamResult(source.name, s.name, status="failed", error=message) for s in wanted if s.name not in done
            ]
    report.retries[source.name] = transport.stats.retries
    return results


def _progress_reporter(stream: Stream, display: RunProgress | None) -> ProgressCallback:
    """Per page: feed the live display, or (no terminal) log a progress line every 30 seconds."""
    started = last_logged = time.monotonic()

    def on_page(source: str, name: str, counts: StageCounts) -> None:
        nonlocal last_logged
        retries = stream.client.transport.stats.retries
        if display is not None:
            display(source, name, counts, retries)
            return
        now = time.monotonic()
        if now - last_logged >= PROGRESS_LOG_SECONDS:
            last_logged = now
            rate = counts.records / max(now - started, 1e-6)
            log.info("progress", records=counts.records, pages=counts.pages, retries=retries, rate=round(rate, 1))

    return on_page


async def _run_stream(
    engine: AsyncEngine,
    stream: Stream,
    source: SourceSettings,
    run_id: str,
    full: bool,
    progress: RunProgress | None,
) -> StreamResult:
    with bound_contextvars(stream=stream.name):
        try:
            on_page = _progress_reporter(stream, progress)
            result = await extract_stream(
                engine, stream, source=source.name, run_id=run_id, full=full, progress=on_page
            )
        except SourceError as exc:
            message = redact(f"{exc.kind}: {exc}")
            result = StreamResult(
                source.name, stream.name, status="failed", error=message, fatal=isinstance(exc, FatalError)
            )
            log.error("stream failed", error=message)
            return result
        log.info("stream finished", **result.counts.as_dict(), complete=result.complete)
        return result


async def run_extract(
    settings: Settings,
    *,
    sources: Sequence[str] = (),
    streams: Sequence[str] = (),
    full: bool = False,
    trigger: str = "manual",
    progress: RunProgress | None = None,
) -> ExtractReport:
    """Extract the chosen sources into staging and record the run."""
    chosen = select_sources(settings, sources)
    engine = create_engine(settings.database_url)
    run_id = new_run_id()
    bind_contextvars(run_id=run_id, job="extract")
    report = ExtractReport(run_id)
    try:
        await open_run(engine, "extract", trigger, run_id)
        per_source = await asyncio.gather(
            *(extract_source(engine, s, report, streams=streams, full=full, progress=progress) for s in chosen)
        )
        report.results = [r for results in per_source for r in results]
        counts = {f"{r.source}.{r.stream}": r.counts.as_dict() | {"status": r.status} for r in report.results}
        await close_run(engine, run_id, report.status, counts, "; ".join(report.failures()) or None)
        log.info("run finished", status=report.status, streams=len(report.results))
    finally:
        await engine.dispose()
    return report
