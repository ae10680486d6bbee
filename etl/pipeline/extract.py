"""The one engine that runs every source and stream: fetch pages, stage them, checkpoint with each.

A page's staged rows and the stream's new cursor commit in one transaction, so a run killed
at any point resumes at the first page not yet staged, never refetching a staged one.
Fetching runs ahead of staging through a small bounded queue, so the network and the
database work at the same time while memory stays flat. The engine, not the streams,
refuses a page whose cursor does not move forward.

What a failure ends (:func:`extract_source`): bad credentials end their source; any other
failure of a stream (a refused command, a missing right for one list, a path the server
lacks, a protocol error, a bug) ends that stream, and the source's other streams still run.
Each source catches everything at its own boundary; nothing here ends the run.
State layout: :mod:`etl.pipeline.state`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from structlog.contextvars import bound_contextvars

from etl.http.errors import AuthenticationError, ConfigurationError, ProtocolError, SourceError
from etl.http.transport import HttpTransport
from etl.pipeline import flow
from etl.pipeline.bounds import ScanOutOfBounds
from etl.pipeline.checkpoints import load_state, save_state, writer_connection
from etl.pipeline.held_deletions import any_staged, count_live
from etl.pipeline.results import SourceResult, StageCounts, StreamResult
from etl.pipeline.stream_writer import StreamWriter, finish_scan
from etl.redaction import redact
from etl.settings import SourceSettings
from etl.sources.base import Stream
from etl.sources.registry import get as source_definition

log = structlog.get_logger(__name__)
ProgressCallback = Callable[[str, str, StageCounts], None]
# (source, stream, counts so far, retries so far on that source)
RunProgress = Callable[[str, str, StageCounts, int], None]
PROGRESS_LOG_SECONDS = 30.0


async def extract_stream(
    engine: AsyncEngine,
    stream: Stream,
    *,
    source: str,
    run_id: str,
    full: bool = False,
    progress: ProgressCallback | None = None,
    result: StreamResult | None = None,
) -> StreamResult:
    """Run one stream to its end (or its first unrecoverable error, which propagates); ``result``,
    when given, is filled as pages are staged, so a failure's caller still knows what was done."""
    result = result or StreamResult(source, stream.name)
    async with writer_connection(engine) as connection:
        sessions = async_sessionmaker(bind=connection, expire_on_commit=False)
        async with sessions() as session, session.begin():
            state = await load_state(session, source, stream.name)
            resumed = state.scan is not None
            sweep_every = stream.settings.full_scan_every.get(stream.name, stream.full_scan_every)
            scan = state.begin(
                run_id=run_id, full=full, incremental=stream.incremental, start=stream.start, sweep_every=sweep_every
            )
            if scan.id == run_id and not scan.pages:  # a scan begun by this run: what the stream held before it
                scan.live_before = await count_live(session, source=source, entity=stream.entity)
                scan.fresh = not scan.live_before and not await any_staged(session, source=source, entity=stream.entity)
            await save_state(session, source, stream.name, state)
        log.info(
            "stream started", mode=scan.mode, sweep=scan.sweep, resumed=resumed and scan.id != run_id,
            cursors=scan.cursors,
        )  # fmt: skip
        writer = StreamWriter(sessions, stream, state, result, run_id=run_id)
        if scan.finished:  # every partition done, the scan not yet closed (a state written by hand or a newer version)
            async with sessions() as session, session.begin():
                await finish_scan(session, stream, state, result, run_id=run_id)
                await save_state(session, source, stream.name, state)
            return result
        try:
            await _run_passes(writer, progress)
        except ScanOutOfBounds:
            # Its checkpoint would stop every later run at once: the next run starts a new scan.
            async with sessions() as session, session.begin():
                state.scan = None
                await save_state(session, source, stream.name, state)
            raise
    return result


async def _run_passes(writer: StreamWriter, progress: ProgressCallback | None) -> None:
    """Stage pages until the scan is complete, reading the list again when a pass says so."""
    stream, result = writer.stream, writer.result
    window = max(1, stream.settings.concurrency)
    while not result.complete:
        await _partition(writer)
        feed = flow.Feed(stream, list(writer.scan.cursors), window, stream.settings.queue_bytes)
        try:
            while (first := await feed.next()) is not None:
                restarted = await writer.commit_pages(first, feed)
                if progress:
                    progress(result.source, stream.name, result.counts)
                if restarted:
                    scan = writer.scan
                    log.info("reading the list again", passes=scan.passes, confirming=scan.confirming)
                    break
            else:
                if not result.complete:
                    raise ProtocolError(f"stream {stream.name}: every partition ended, yet the scan did not")
        finally:
            await feed.aclose()


async def _partition(writer: StreamWriter) -> None:
    """Split a pass not yet split into the stream's keyset partitions, once (the split is kept in the
    scan state, so a resumed run continues each partition; it never splits again)."""
    scan, stream = writer.scan, writer.stream
    settings = stream.settings
    wanted = settings.partitions or settings.concurrency
    open_cursors = [cursor for cursor in scan.cursors if cursor is not None]
    if scan.partitioned and wanted == 1 and len(open_cursors) > 1:
        # ``partitions: 1`` set on a scan already split (a server found to ignore the upper bound).
        scan.cursors, scan.ranges = [stream.merge(open_cursors)], []
        log.info("partitions merged into one cursor", cursor=scan.cursors[0])
    elif scan.partitioned:
        return
    if wanted > 1 and len(open_cursors) == 1:
        probing = asyncio.timeout(settings.stall_timeout)
        try:
            async with probing:
                scan.cursors = list(await stream.partition(open_cursors[0], wanted))
        except TimeoutError:
            if not probing.expired():
                raise
            raise flow.StreamStalled(f"the partition probe got no answer in {settings.stall_timeout:g} s "
                                     "(stall_timeout)") from None  # fmt: skip
        if len(scan.cursors) > 1:
            scan.ranges = list(scan.cursors)
            log.info("scan split into partitions", partitions=len(scan.cursors), cursors=scan.cursors)
    scan.partitioned = True
    async with writer.sessions() as session, session.begin():
        await save_state(session, writer.result.source, stream.name, writer.state)


def describe(exc: BaseException) -> str:
    """A one-line, secret-free account of a failure for the summary and the run row."""
    if isinstance(exc, SourceError):
        return redact(f"{exc.kind}: {exc}")
    return redact(f"{type(exc).__name__}: {exc}")


async def extract_source(
    engine: AsyncEngine,
    source: SourceSettings,
    *,
    run_id: str,
    streams: Sequence[str] = (),
    full: bool = False,
    progress: RunProgress | None = None,
) -> SourceResult:
    """Open the source's client, run its wanted streams, and say how each ended. Never raises
    for a failure of this source: it is recorded in the result."""
    definition = source_definition(source.kind)
    wanted = [s for s in definition.streams if not streams or s.name in streams]
    result = SourceResult(source.name)
    transport = HttpTransport(source)
    with bound_contextvars(source=source.name):
        try:
            async with transport:
                client = definition.client_class(source, transport)
                try:
                    await _open(client, source.stall_timeout)
                    result.streams, stopped = await _run_streams(
                        engine, client, wanted, transport, run_id, full, progress
                    )
                    result.error = stopped
                finally:
                    with contextlib.suppress(Exception):
                        await client.close()
        except Exception as exc:  # this source's boundary: whatever happened ends this source only
            message = describe(exc)
            result.error = message
            log.error("source failed", error=message)
            done = {r.stream for r in result.streams}
            result.streams += [
                StreamResult(source.name, s.name, status="failed", error=message) for s in wanted if s.name not in done
            ]
        result.retries, result.requests = transport.stats.retries, transport.stats.requests
    return result


async def _run_streams(
    engine: AsyncEngine, client: Any, wanted: list[type[Stream]], transport: HttpTransport, run_id: str,
    full: bool, progress: RunProgress | None,
) -> tuple[list[StreamResult], str | None]:  # fmt: skip
    """The source's streams at once, up to ``concurrency`` of them (the transport bounds the requests
    in flight and per second for all of them together), and why the source stopped, if it did.
    Refused credentials end the source: the streams still running are stopped, each keeping what
    it staged, and the ones not started are not."""
    settings = client.settings
    slots = asyncio.Semaphore(max(1, settings.concurrency))
    results = {cls.name: StreamResult(settings.name, cls.name) for cls in wanted}
    stopping: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def one(stream_class: type[Stream]) -> None:
        async with slots:
            if stopping.done():
                return
            stream = stream_class(client, settings)
            result = results[stream.name]
            if await _run_stream(engine, stream, transport, run_id, full, progress, result) and not stopping.done():
                stopping.set_result(result.error or "credentials refused")

    tasks = [asyncio.create_task(one(stream_class)) for stream_class in wanted]
    everything = asyncio.ensure_future(asyncio.wait(tasks))
    try:
        await asyncio.wait([everything, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Refused credentials (every other stream would fail alike), or this run itself cancelled
        # (Ctrl-C, SIGTERM): no stream outlives it.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, everything, return_exceptions=True)
    reason = stopping.result() if stopping.done() else None
    for result in results.values():
        if not result.complete and not result.failed:
            result.status, result.error = "failed", reason or "stopped"
    return list(results.values()), reason


async def _open(client: Any, seconds: float) -> None:
    """Open the source's client; one that has not opened after ``stall_timeout`` ends the source
    (a trickling login or ``GET /status`` would otherwise hold it for ``call_budget``)."""
    opening = asyncio.timeout(seconds)
    try:
        async with opening:
            await client.open()
    except TimeoutError:
        if not opening.expired():
            raise
        raise flow.StreamStalled(f"the source did not open within {seconds:g} s (stall_timeout)") from None


async def _run_stream(
    engine: AsyncEngine,
    stream: Stream,
    transport: HttpTransport,
    run_id: str,
    full: bool,
    display: RunProgress | None,
    result: StreamResult,
) -> bool:
    """One stream, filling ``result``; whether its failure ends the source (only refused credentials do)."""
    source = stream.settings.name
    with bound_contextvars(stream=stream.name):
        try:
            on_page = _progress_reporter(transport, display)
            await extract_stream(
                engine, stream, source=source, run_id=run_id, full=full, progress=on_page, result=result
            )
        except Exception as exc:
            result.status, result.error = "failed", describe(exc)
            log.error("stream failed", error=result.error, **result.counts.as_dict())
            # Refused credentials and settings that cannot work end the source: every stream would fail alike.
            return isinstance(exc, AuthenticationError | ConfigurationError)
        log.info("stream finished", **result.counts.as_dict(), complete=result.complete, status=result.status)
        return False


def _progress_reporter(transport: HttpTransport, display: RunProgress | None) -> ProgressCallback:
    """Per page: feed the live display, or (no terminal) log a progress line every 30 seconds."""
    started = last_logged = time.monotonic()

    def on_page(source: str, name: str, counts: StageCounts) -> None:
        nonlocal last_logged
        retries = transport.stats.retries
        if display is not None:
            display(source, name, counts, retries)
            return
        now = time.monotonic()
        if now - last_logged >= PROGRESS_LOG_SECONDS:
            last_logged = now
            rate = counts.records / max(now - started, 1e-6)
            log.info("progress", records=counts.records, pages=counts.pages, retries=retries, rate=round(rate, 1))

    return on_page
