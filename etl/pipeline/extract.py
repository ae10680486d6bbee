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
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.contextvars import bound_contextvars

from etl.db.engine import session_factory
from etl.http.errors import AuthenticationError, ConfigurationError, SourceError
from etl.http.transport import HttpTransport
from etl.pipeline import flow
from etl.pipeline.bounds import ScanBound, ScanOutOfBounds
from etl.pipeline.deletions import DeletionGuard
from etl.pipeline.held_deletions import count_live, count_unseen, settle_deletions
from etl.pipeline.pages import Split
from etl.pipeline.results import SourceResult, StageCounts, StreamResult
from etl.pipeline.staging_writes import (
    load_state,
    reject_records,
    save_state,
    stage_records,
    tune_staging_transaction,
)
from etl.pipeline.state import Scan, StreamState
from etl.redaction import redact
from etl.settings import SourceSettings
from etl.sources.base import Evidence, Page, Stream
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
    sessions = session_factory(engine)
    sweep_every = stream.settings.full_scan_every.get(stream.name, stream.full_scan_every)
    async with sessions() as session, session.begin():
        state = await load_state(session, source, stream.name)
        resumed = state.scan is not None
        scan = state.begin(
            run_id=run_id, full=full, incremental=stream.incremental, start=stream.start, sweep_every=sweep_every
        )
        if scan.id == run_id and not scan.pages:  # a scan begun by this run: what the stream held before it
            scan.live_before = await count_live(session, source=source, entity=stream.entity)
        await save_state(session, source, stream.name, state)
    log.info(
        "stream started", mode=scan.mode, sweep=scan.sweep, resumed=resumed and scan.id != run_id, cursors=scan.cursors
    )
    if scan.finished:  # every partition done, the scan not yet closed (a state written by hand or a newer version)
        async with sessions() as session, session.begin():
            await _finish_scan(session, stream, state, result, run_id=run_id)
            await save_state(session, source, stream.name, state)
        return result
    try:
        await _run_passes(sessions, stream, state, result, run_id=run_id, progress=progress)
    except ScanOutOfBounds:
        # Its checkpoint would stop every later run at once: the next run starts a new scan.
        async with sessions() as session, session.begin():
            state.scan = None
            await save_state(session, source, stream.name, state)
        raise
    return result


async def _run_passes(
    sessions: Any, stream: Stream, state: StreamState, result: StreamResult, *, run_id: str,
    progress: ProgressCallback | None,
) -> None:  # fmt: skip
    """Stage pages until the scan is complete, reading the list again when a pass says so."""
    scan = state.scan
    assert scan is not None
    window = max(1, stream.settings.concurrency)
    bound = _LiveBound(stream)
    while not result.complete:
        cursor = scan.cursors[0]
        assert cursor is not None
        fetched = flow.split_pages(stream, flow.pages(stream, cursor, window))
        async with contextlib.aclosing(flow.prefetch(fetched, depth=window + 1)) as prepared:
            async for page, split in flow.unstalled(prepared, stream.settings.stall_timeout):
                restarted = await _stage_page(sessions, stream, page, split, state, result, run_id=run_id, bound=bound)
                if progress:
                    progress(result.source, stream.name, result.counts)
                if restarted:
                    log.info("reading the list again", passes=scan.passes, confirming=scan.confirming,
                             shifted=page.evidence.shifted)  # fmt: skip
                    break
            else:
                break


class _LiveBound:
    """A stream's :class:`~etl.pipeline.bounds.ScanBound`, checked against the live rows it had when
    its scan began (counted then, kept in the scan state)."""

    def __init__(self, stream: Stream) -> None:
        settings = stream.settings
        self.bound = ScanBound(settings.scan_bound_factor, settings.scan_bound_slack, settings.page_size)

    def check(self, scan: Scan, received: int, total: int | None) -> None:
        known_total = total if total is not None else scan.total
        self.bound.check(
            received=scan.received + received, pages=scan.pages + 1, live=scan.live_before, total=known_total
        )

    def check_repeats(self, scan: Scan, counts: StageCounts) -> None:
        """After staging a page: count the rows this pass had already staged, and bound them."""
        scan.repeats += counts.repeated
        distinct = max(scan.received + counts.records - scan.repeats, 0)
        self.bound.check_repeats(repeats=scan.repeats, distinct=distinct, live=scan.live_before)


async def _stage_page(
    sessions: Any, stream: Stream, page: Page, split: Split, state: StreamState, result: StreamResult, *,
    run_id: str, bound: _LiveBound,
) -> bool:  # fmt: skip
    """Stage one page and move the checkpoint past it, in one transaction; True when the scan
    starts a new pass (:func:`_another_pass`). A page past the scan's bound is not staged."""
    good, bad = split.good, split.bad
    scan = state.scan
    assert scan is not None
    evidence = page.evidence
    received = page.received if page.received is not None else len(good) + len(bad)
    async with sessions() as session, session.begin():
        bound.check(scan, received, evidence.total)
        await tune_staging_transaction(session)
        where = {"source": result.source, "entity": stream.entity, "run_id": run_id}
        counts = await stage_records(session, **where, records=good, scan_mark=scan.pass_id, tombstones=split.gone)
        bound.check_repeats(scan, counts)
        await reject_records(session, **where, rejections=bad, scan_mark=scan.pass_id)
        counts.rejected, counts.pages, counts.calls = len(bad), 1, page.calls
        counts.records += len(bad)
        scan.note(received=received, total=evidence.total, doubt=evidence.doubt)
        if split.unidentified and scan.mode == "full":
            scan.doubt(f"rejected records without a readable id ({split.unidentified} on a page): any of them "
                       "may be a staged row seen again")  # fmt: skip
        scan.advance(0, page.next_cursor, page.watermark)
        restarted = await _another_pass(session, stream, scan, evidence, source=result.source)
        if scan.finished:
            await _finish_scan(session, stream, state, result, run_id=run_id, counts=counts)
        await save_state(session, result.source, stream.name, state)
    result.counts.add(counts)
    return restarted


async def _another_pass(session: Any, stream: Stream, scan: Scan, evidence: Evidence, *, source: str) -> bool:
    """Whether a full scan reads its list again, from the start, in a new pass: when rows moved under
    offset paging (the new pass alone counts; bounded by ``max_rereads``, then a doubt), or when an
    offset-paged pass ended with rows missing (the new pass confirms them: only rows missing from
    both are deleted)."""
    if scan.mode != "full":
        return False
    if evidence.shifted:
        if scan.passes <= stream.settings.max_rereads:
            scan.restart(str(uuid.uuid4()), stream.start(None))
            return True
        scan.doubt(f"rows kept moving after {scan.passes - 1} re-reads: {evidence.shifted}")
    confirm = scan.finished and stream.offset_paged and not scan.confirming
    if confirm and await count_unseen(session, source=source, entity=stream.entity, markers=scan.markers):
        scan.restart(str(uuid.uuid4()), stream.start(None), confirm=True)
        return True
    return False


async def _finish_scan(
    session: Any, stream: Stream, state: StreamState, result: StreamResult, *, run_id: str,
    counts: StageCounts | None = None,
) -> None:  # fmt: skip
    """Close the scan; a full one settles its deletions (applied on proof, otherwise held)."""
    scan: Scan = state.finish()
    result.complete = True
    if scan.mode != "full":
        return
    settings = stream.settings
    guard = DeletionGuard(max_fraction=settings.max_delete_fraction, min_rows=settings.min_rows_for_fraction)
    settled = await settle_deletions(
        session, scan, source=result.source, stream=stream.name, entity=stream.entity, run_id=run_id, guard=guard
    )
    tally = counts if counts is not None else result.counts
    tally.deleted += settled.deleted
    if settled.held:
        result.status, result.error = "held", settled.held


def describe(exc: BaseException) -> str:
    """A one-line, secret-free account of a failure for the summary and the run row."""
    if isinstance(exc, SourceError):
        return redact(f"{exc.kind}: {exc}")
    return redact(f"{type(exc).__name__}: {exc}")


class _SourceStopped(Exception):
    """Credentials were refused mid-source: the streams after it are not tried."""


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
                    for stream_class in wanted:
                        stream = stream_class(client, source)
                        outcome, ends_source = await _run_stream(engine, stream, transport, run_id, full, progress)
                        result.streams.append(outcome)
                        if ends_source:
                            raise _SourceStopped(outcome.error or "credentials refused")
                finally:
                    with contextlib.suppress(Exception):
                        await client.close()
        except Exception as exc:  # this source's boundary: whatever happened ends this source only
            message = str(exc) if isinstance(exc, _SourceStopped) else describe(exc)
            result.error = message
            log.error("source failed", error=message)
            done = {r.stream for r in result.streams}
            result.streams += [
                StreamResult(source.name, s.name, status="failed", error=message) for s in wanted if s.name not in done
            ]
        result.retries, result.requests = transport.stats.retries, transport.stats.requests
    return result


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
) -> tuple[StreamResult, bool]:
    """One stream, and whether its failure ends the source (only refused credentials do)."""
    source = stream.settings.name
    with bound_contextvars(stream=stream.name):
        result = StreamResult(source, stream.name)
        try:
            on_page = _progress_reporter(transport, display)
            await extract_stream(
                engine, stream, source=source, run_id=run_id, full=full, progress=on_page, result=result
            )
        except Exception as exc:
            result.status, result.error = "failed", describe(exc)
            log.error("stream failed", error=result.error, **result.counts.as_dict())
            # Refused credentials and settings that cannot work end the source: every stream would fail alike.
            return result, isinstance(exc, AuthenticationError | ConfigurationError)
        log.info("stream finished", **result.counts.as_dict(), complete=result.complete, status=result.status)
        return result, False


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
