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
import dataclasses
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.contextvars import bound_contextvars

from etl.db.engine import session_factory
from etl.http.errors import AuthenticationError, ConfigurationError, ProtocolError, SourceError
from etl.http.transport import HttpTransport
from etl.payload import fingerprint
from etl.pipeline.deletions import DeletionGuard
from etl.pipeline.held_deletions import count_unseen, settle_deletions
from etl.pipeline.results import SourceResult, StageCounts, StreamResult
from etl.pipeline.staging_writes import (
    Rejection,
    load_state,
    reject_records,
    save_state,
    stage_records,
    tune_staging_transaction,
)
from etl.pipeline.state import Cursor, Scan, StreamState
from etl.redaction import redact
from etl.settings import SourceSettings
from etl.sources.base import Evidence, Page, RecordRejected, Stream
from etl.sources.registry import get as source_definition

log = structlog.get_logger(__name__)
ProgressCallback = Callable[[str, str, StageCounts], None]
# (source, stream, counts so far, retries so far on that source)
RunProgress = Callable[[str, str, StageCounts, int], None]
PROGRESS_LOG_SECONDS = 30.0
T = TypeVar("T")
Split = tuple[list[tuple[str, Any, str]], list[Rejection], frozenset[str]]


def split_page(stream: Stream, records: list[Any]) -> Split:
    """Good records with id and hash, the rejected ones with their reasons, and the ids of tombstones."""
    good, bad, gone = [], [], set()
    for record in records:
        source_id = None
        try:
            source_id = stream.source_id(record)
            good.append((source_id, *fingerprint(record)))
            if stream.is_deleted(record):
                gone.add(source_id)
        except (RecordRejected, ValueError) as exc:
            bad.append(Rejection(source_id, record, str(exc)))
    return good, bad, frozenset(gone)


def check_progress(stream: Stream, asked: Cursor, page: Page, seen: set[str]) -> None:
    """Refuse a page whose next cursor repeats one of this scan or does not move past the one asked."""
    following = page.next_cursor
    if following is None:
        return
    key = repr(sorted(following.items()))
    before, after = stream.position(asked), stream.position(following)
    if following == asked or key in seen or (before is not None and after is not None and after <= before):
        raise ProtocolError(
            f"stream {stream.name}: the page at {asked} did not move forward (next {following}); "
            "the server may be ignoring its paging or sort parameters"
        )
    seen.add(key)


def check_order(stream: Stream, split: Split) -> None:
    """For keyset streams: a page's ids must ascend (a server ignoring the sort would skip records)."""
    ids = [int(source_id) for source_id, _payload, _digest in split[0] if source_id.isdigit()]
    if any(later <= earlier for earlier, later in itertools.pairwise(ids)):
        raise ProtocolError(f"stream {stream.name}: a page's ids are not in ascending order")


async def _pages(stream: Stream, cursor: Cursor, window: int) -> AsyncIterator[tuple[Cursor, Page]]:
    """Pages in order; lookahead streams keep up to ``window`` fetches in flight."""
    pending: list[tuple[Cursor, asyncio.Task[Page]]] = []
    next_cursor: Cursor | None = cursor
    seen = {repr(sorted(cursor.items()))}
    try:
        while pending or next_cursor is not None:
            while next_cursor is not None and len(pending) < (window if stream.lookahead else 1):
                pending.append((next_cursor, asyncio.create_task(stream.fetch(next_cursor))))
                next_cursor = stream.predict(next_cursor) if stream.lookahead else None
            asked, task = pending.pop(0)
            page = await task
            check_progress(stream, asked, page, seen)
            yield asked, page
            expected = pending[0][0] if pending else next_cursor
            if page.next_cursor != expected:
                # The page ended the stream or moved differently than predicted: drop the guesses.
                for _, stale in pending:
                    stale.cancel()
                pending.clear()
                next_cursor = page.next_cursor
    finally:
        for _, stale in pending:
            stale.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await stale


async def _split_pages(stream: Stream, pages: AsyncIterator[tuple[Cursor, Page]]) -> AsyncIterator[tuple[Page, Split]]:
    """Ids, hashes and rejections of each page, worked out ahead of staging: run inside the
    prefetch task, this CPU work overlaps the database's work on the page before."""
    async for _asked, page in pages:
        split = split_page(stream, page.records)
        if stream.ascending_ids:
            check_order(stream, split)
        # The split holds everything staging needs; dropping the raw records halves a queued page.
        yield dataclasses.replace(page, records=[]), split


async def _prefetch(pages: AsyncIterator[T], depth: int) -> AsyncIterator[T]:
    """Run an iterator ahead of the consumer through a queue of ``depth`` items."""
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=depth)
    done = object()

    async def produce() -> None:
        try:
            async for item in pages:
                await queue.put(item)
            await queue.put(done)
        except asyncio.CancelledError:
            raise  # the consumer is gone; nobody would take a put from a full queue
        except Exception as exc:
            await queue.put(exc)

    producer = asyncio.create_task(produce())
    try:
        while (item := await queue.get()) is not done:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await producer


async def extract_stream(
    engine: AsyncEngine,
    stream: Stream,
    *,
    source: str,
    run_id: str,
    full: bool = False,
    progress: ProgressCallback | None = None,
) -> StreamResult:
    """Run one stream to its end (or its first unrecoverable error, which propagates)."""
    result = StreamResult(source, stream.name)
    sessions = session_factory(engine)
    sweep_every = stream.settings.full_scan_every.get(stream.name, stream.full_scan_every)
    async with sessions() as session, session.begin():
        state = await load_state(session, source, stream.name)
        resumed = state.scan is not None
        scan = state.begin(
            run_id=run_id, full=full, incremental=stream.incremental, start=stream.start, sweep_every=sweep_every
        )
        await save_state(session, source, stream.name, state)
    log.info(
        "stream started", mode=scan.mode, sweep=scan.sweep, resumed=resumed and scan.id != run_id, cursors=scan.cursors
    )
    if scan.finished:  # every partition done, the scan not yet closed (a state written by hand or a newer version)
        async with sessions() as session, session.begin():
            await _finish_scan(session, stream, state, result, run_id=run_id)
            await save_state(session, source, stream.name, state)
        return result
    window = max(1, stream.settings.concurrency)
    while not result.complete:
        cursor = scan.cursors[0]
        assert cursor is not None
        pages = _split_pages(stream, _pages(stream, cursor, window))
        async with contextlib.aclosing(_prefetch(pages, depth=window + 1)) as prepared:
            async for page, split in prepared:
                restarted = await _stage_page(sessions, stream, page, split, state, result, run_id=run_id)
                if progress:
                    progress(source, stream.name, result.counts)
                if restarted:
                    log.info("reading the list again", passes=scan.passes, confirming=scan.confirming,
                             shifted=page.evidence.shifted)  # fmt: skip
                    break
            else:
                break
    return result


async def _stage_page(
    sessions: Any, stream: Stream, page: Page, split: Split, state: StreamState, result: StreamResult, *, run_id: str
) -> bool:
    """Stage one page and move the checkpoint past it, in one transaction; True when the scan
    starts a new pass (:func:`_another_pass`)."""
    good, bad, gone = split
    scan = state.scan
    assert scan is not None
    async with sessions() as session, session.begin():
        await tune_staging_transaction(session)
        where = {"source": result.source, "entity": stream.entity, "run_id": run_id}
        counts = await stage_records(session, **where, records=good, scan_mark=scan.pass_id, tombstones=gone)
        await reject_records(session, **where, rejections=bad, scan_mark=scan.pass_id)
        counts.rejected, counts.pages, counts.calls = len(bad), 1, page.calls
        counts.records += len(bad)
        evidence = page.evidence
        received = page.received if page.received is not None else len(good) + len(bad)
        scan.note(received=received, total=evidence.total, doubt=evidence.doubt)
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
        scan.note(
            received=0, total=None, doubt=f"rows kept moving after {scan.passes - 1} re-reads: {evidence.shifted}"
        )
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
                    await client.open()
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
        try:
            on_page = _progress_reporter(transport, display)
            result = await extract_stream(engine, stream, source=source, run_id=run_id, full=full, progress=on_page)
        except Exception as exc:
            message = describe(exc)
            log.error("stream failed", error=message)
            # Refused credentials and settings that cannot work end the source: every stream would fail alike.
            return StreamResult(source, stream.name, status="failed", error=message), isinstance(
                exc, AuthenticationError | ConfigurationError
            )
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
