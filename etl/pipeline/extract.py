"""The one engine that runs every stream: fetch pages, stage them, checkpoint with each.

A page's staged rows and the stream's new cursor commit in one transaction, so a
run killed at any point resumes at the first page not yet staged, never refetching
a staged one. Fetching runs ahead of staging through a small bounded queue, so the
network and the database work at the same time while memory stays flat.

Stream state (``stream_states.state``)::

    {"watermark": {...} | None,          # where the next incremental scan starts
     "last_complete_at": "...",
     "scan": {"id", "runs": [...], "mode": "full" | "incremental",
              "cursor": {...}, "next_watermark": {...} | None}}   # a scan in progress
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from etl.db.engine import session_factory
from etl.pipeline.staging import (
    Rejection,
    StageCounts,
    fingerprint,
    load_state,
    mark_deleted,
    reject_records,
    relax_commit_durability,
    save_state,
    stage_records,
)
from etl.sources.base import Cursor, Page, RecordRejected, Stream

log = structlog.get_logger(__name__)
ProgressCallback = Callable[[str, str, StageCounts], None]
T = TypeVar("T")


@dataclass
class StreamResult:
    source: str
    stream: str
    counts: StageCounts = field(default_factory=StageCounts)
    status: str = "succeeded"
    error: str | None = None
    complete: bool = False
    fatal: bool = False


def begin_scan(state: dict[str, Any], stream: Stream, run_id: str, full: bool) -> dict[str, Any]:
    """Resume the scan in progress, or start one (full when asked, when the stream is not
    incremental, or when no watermark exists yet)."""
    scan = state.get("scan")
    if scan and not (full and scan["mode"] != "full"):
        if run_id not in scan["runs"]:
            scan["runs"].append(run_id)
        return scan
    watermark = None if full or not stream.incremental else state.get("watermark")
    return {
        "id": run_id,
        "runs": [run_id],
        "mode": "incremental" if watermark else "full",
        "cursor": stream.start(watermark),
        "next_watermark": stream.scan_watermark(watermark),
        "started_at": datetime.now(UTC).isoformat(),
    }


def split_page(stream: Stream, records: list[Any]) -> tuple[list[tuple[str, Any, str]], list[Rejection]]:
    """Good records with id and hash, and the rejected ones with their reasons."""
    good, bad = [], []
    for record in records:
        source_id = None
        try:
            source_id = stream.source_id(record)
            good.append((source_id, *fingerprint(record)))
        except (RecordRejected, ValueError) as exc:
            bad.append(Rejection(source_id, record, str(exc)))
    return good, bad


async def _pages(stream: Stream, cursor: Cursor, window: int) -> AsyncIterator[tuple[Cursor, Page]]:
    """Pages in order; lookahead streams keep up to ``window`` fetches in flight."""
    pending: list[tuple[Cursor, asyncio.Task[Page]]] = []
    next_cursor: Cursor | None = cursor
    try:
        while pending or next_cursor is not None:
            while next_cursor is not None and len(pending) < (window if stream.lookahead else 1):
                pending.append((next_cursor, asyncio.create_task(stream.fetch(next_cursor))))
                next_cursor = stream.predict(next_cursor) if stream.lookahead else None
            asked, task = pending.pop(0)
            page = await task
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


Split = tuple[list[tuple[str, Any, str]], list[Rejection]]


async def _split_pages(stream: Stream, pages: AsyncIterator[tuple[Cursor, Page]]) -> AsyncIterator[tuple[Page, Split]]:
    """Ids, hashes and rejections of each page, worked out ahead of staging: run inside the
    prefetch task, this CPU work overlaps the database's work on the page before."""
    async for _asked, page in pages:
        split = split_page(stream, page.records)
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
    async with sessions() as session, session.begin():
        state = await load_state(session, source, stream.name)
        scan = begin_scan(state, stream, run_id, full)
        state["scan"] = scan
        await save_state(session, source, stream.name, state)
    log.info("stream started", mode=scan["mode"], resumed=scan["id"] != run_id, cursor=scan["cursor"])
    window = max(1, stream.settings.concurrency)
    pages = _split_pages(stream, _pages(stream, scan["cursor"], window))
    async with contextlib.aclosing(_prefetch(pages, depth=window + 1)) as prepared:
        async for page, split in prepared:
            await _stage_page(sessions, stream, page, split, state, scan, result, source=source, run_id=run_id)
            if progress:
                progress(source, stream.name, result.counts)
    return result


async def _stage_page(
    sessions: Any,
    stream: Stream,
    page: Page,
    split: Split,
    state: dict[str, Any],
    scan: dict[str, Any],
    result: StreamResult,
    *,
    source: str,
    run_id: str,
) -> None:
    """Stage one page and move the checkpoint past it, in one transaction."""
    good, bad = split
    async with sessions() as session, session.begin():
        await relax_commit_durability(session)
        counts = await stage_records(session, source=source, entity=stream.entity, run_id=run_id, records=good)
        await reject_records(session, source=source, entity=stream.entity, run_id=run_id, rejections=bad)
        counts.rejected, counts.pages, counts.calls = len(bad), 1, page.calls
        counts.records += len(bad)
        if page.watermark and not scan.get("next_watermark"):
            scan["next_watermark"] = page.watermark
        scan["cursor"] = page.next_cursor
        if page.next_cursor is None:
            counts.deleted = await _finish_scan(session, state, scan, source=source, entity=stream.entity)
            result.complete = True
        await save_state(session, source, stream.name, state)
    result.counts.add(counts)


async def _finish_scan(session: Any, state: dict[str, Any], scan: dict[str, Any], *, source: str, entity: str) -> int:
    deleted = 0
    if scan["mode"] == "full":
        deleted = await mark_deleted(session, source=source, entity=entity, scan_runs=scan["runs"])
    state["watermark"] = scan.get("next_watermark") or state.get("watermark")
    state["last_complete_at"] = datetime.now(UTC).isoformat()
    state["last_scan_mode"] = scan["mode"]
    state.pop("scan", None)
    return deleted
