"""How pages flow from a stream to the staging writer: in order, fetched ahead, never stalled for long.

:func:`pages` keeps up to ``window`` fetches in flight for lookahead streams and one for the rest;
:func:`split_pages` works out ids, hashes and rejections inside the prefetch task, so that CPU
work overlaps the database's work on the page before; :func:`prefetch` runs an iterator ahead
of its consumer through a bounded queue, so memory stays flat; :func:`unstalled` stops a stream
whose next page does not come within ``stall_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from etl.http.errors import FatalError
from etl.pipeline.pages import Split, check_order, check_progress, split_page
from etl.pipeline.state import Cursor
from etl.sources.base import Page, Stream

T = TypeVar("T")


class StreamStalled(FatalError):
    """No page arrived for ``stall_timeout`` seconds: the stream stops, resumable from its checkpoint."""

    kind = "stalled"


async def pages(stream: Stream, cursor: Cursor, window: int) -> AsyncIterator[tuple[Cursor, Page]]:
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


async def split_pages(stream: Stream, pages: AsyncIterator[tuple[Cursor, Page]]) -> AsyncIterator[tuple[Page, Split]]:
    """Ids, hashes and rejections of each page, worked out ahead of staging: run inside the
    prefetch task, this CPU work overlaps the database's work on the page before."""
    async for _asked, page in pages:
        split = split_page(stream, page.records)
        if stream.ascending_ids:
            check_order(stream, split)
        # The split holds everything staging needs; dropping the raw records halves a queued page.
        yield dataclasses.replace(page, records=[]), split


async def prefetch(pages: AsyncIterator[T], depth: int) -> AsyncIterator[T]:
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


async def unstalled(items: AsyncIterator[T], seconds: float) -> AsyncIterator[T]:
    """The items of ``items``; :class:`StreamStalled` when the next one takes longer than ``seconds``
    (a trickling or hung server: retries and per-request timeouts alone may hold a stream for
    the better part of an hour)."""
    while True:
        waiting = asyncio.timeout(seconds)
        try:
            async with waiting:
                item = await anext(items)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if not waiting.expired():
                raise
            raise StreamStalled(
                f"no page for {seconds:g} s (stall_timeout); stopped at the last staged page, "
                "where the next run continues"
            ) from None
        yield item
