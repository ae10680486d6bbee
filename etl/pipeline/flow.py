"""How pages flow from a stream to its staging writer: in order per partition, fetched ahead, never stalled for long.

:class:`Feed` runs every unfinished partition of a scan at once, each in a task of its own:
:func:`pages` keeps up to ``window`` fetches in flight for lookahead streams and one for the
rest; :func:`split_pages` works out ids, hashes and rejections in that task, so CPU work
overlaps the database's work and the other partitions' network waits; :func:`unstalled` stops
a partition whose next page does not come within ``stall_timeout``. The pages meet in one
:class:`PageQueue`, bounded in bytes, so memory stays flat however large the pages.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

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
        # gather, not a suppressed await: a cancellation of this task itself must not be swallowed here
        await asyncio.gather(*(stale for _, stale in pending), return_exceptions=True)


async def split_pages(stream: Stream, pages: AsyncIterator[tuple[Cursor, Page]]) -> AsyncIterator[tuple[Page, Split]]:
    """Ids, hashes and rejections of each page, worked out ahead of staging: run inside the
    prefetch task, this CPU work overlaps the database's work on the page before."""
    async for _asked, page in pages:
        split = split_page(stream, page.records)
        if stream.ascending_ids:
            check_order(stream, split)
        # The split holds everything staging needs; dropping the raw records halves a queued page.
        yield dataclasses.replace(page, records=[]), split


class PageQueue(Generic[T]):
    """A FIFO bounded by the bytes it holds, not by its length: a page of 2,000 records of 50 KB
    and a page of 100 ids weigh what they weigh. One item is always let in when the queue is
    empty, so a page larger than the bound still flows, alone."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0
        self._items: collections.deque[tuple[T, int]] = collections.deque()
        self._room = asyncio.Event()
        self._filled = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, item: T, size: int) -> None:
        while self._items and self.held + size > self.max_bytes:
            self._room.clear()
            await self._room.wait()
        self._items.append((item, size))
        self.held += size
        self._filled.set()

    async def get(self) -> T:
        while not self._items:
            self._filled.clear()
            await self._filled.wait()
        return self._take()

    def get_nowait(self) -> T | None:
        return self._take() if self._items else None

    def _take(self) -> T:
        item, size = self._items.popleft()
        self.held -= size
        self._room.set()
        return item


@dataclasses.dataclass(frozen=True)
class Fed:
    """A page of one partition, split and ready to stage."""

    partition: int
    page: Page
    split: Split
    size: int = 0  # bytes held in memory (page_bytes)


@dataclasses.dataclass(frozen=True)
class PartitionEnded:
    """A partition's fetcher has nothing more (its last page was fed before this), or failed."""

    partition: int
    failure: BaseException | None = None


def page_bytes(split: Split) -> int:
    """What a queued page holds in memory: its records' JSON text, and a little per row."""
    return sum(len(text) for _id, text, _digest in split.good) + 64 * (len(split.good) + len(split.bad))


class Feed:
    """Every unfinished partition of a stream fetched at once, into one byte-bounded queue that the
    stream's one writer drains in order per partition.

    Each partition runs :func:`pages` -> :func:`split_pages` -> :func:`unstalled` in a task of its
    own, so a partition whose server stops answering stalls alone and the splitting work of one
    overlaps the network wait of the others. A fetcher's exception reaches the writer after every
    page that partition fetched before it."""

    def __init__(self, stream: Stream, cursors: list[Cursor | None], window: int, max_bytes: int) -> None:
        self.queue: PageQueue[Fed | PartitionEnded] = PageQueue(max_bytes)
        self.open = {n for n, cursor in enumerate(cursors) if cursor is not None}
        self.failure: BaseException | None = None
        self._tasks = [
            asyncio.create_task(self._fetch(stream, n, cursor, window))
            for n, cursor in enumerate(cursors)
            if cursor is not None
        ]

    async def _fetch(self, stream: Stream, partition: int, cursor: Cursor, window: int) -> None:
        try:
            fetched = split_pages(stream, pages(stream, cursor, window))
            async with contextlib.aclosing(unstalled(fetched, stream.settings.stall_timeout)) as ready:
                async for page, split in ready:
                    size = page_bytes(split)
                    await self.queue.put(Fed(partition, page, split, size), size)
            await self.queue.put(PartitionEnded(partition), 0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self.queue.put(PartitionEnded(partition, exc), 0)

    def _accept(self, item: Fed | PartitionEnded) -> Fed | None:
        if isinstance(item, PartitionEnded):
            # A failed partition ends alone: the others run to their ends, so the next run has
            # only the failed one's rest to read. The stream fails once they all have.
            self.open.discard(item.partition)
            self.failure = self.failure or item.failure
            return None
        return item

    async def next(self) -> Fed | None:
        """The next page of any partition; None when every partition has ended. A partition's failure
        is raised here once every partition has ended (the first failure, if several failed)."""
        while self.open:
            if (fed := self._accept(await self.queue.get())) is not None:
                return fed
        if self.failure is not None:
            raise self.failure
        return None

    def ready(self) -> Fed | None:
        """The next page if one is already waiting, for a transaction already open (never raises:
        a failure waits for :meth:`next`, so the pages before it still commit)."""
        while self.open and (item := self.queue.get_nowait()) is not None:
            if (fed := self._accept(item)) is not None:
                return fed
        return None

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        # gather, not a suppressed await per task: a cancellation of the writer's own task (Ctrl-C,
        # SIGTERM, refused credentials) must reach it, not be taken for a fetcher's
        await asyncio.gather(*self._tasks, return_exceptions=True)


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
