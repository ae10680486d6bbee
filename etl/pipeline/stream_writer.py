"""A stream's one staging writer: pages of every partition, several to a transaction, each
transaction committing its rows with the checkpoint that moves past them.

A transaction takes the page the writer waited for, then every page already waiting, and
keeps taking while it stays within ``commit_rows``, ``commit_bytes`` and ``commit_ms``; it never
waits for the network with a transaction open. So a run killed anywhere resumes at the first
page not committed, each partition at its own cursor, and fetches no committed page again.

The scan's own steps happen here too, in the transaction of the page that causes them: a new
pass when offset pages shifted (the pages after the shifted one are dropped, the new pass
reads them again), a confirming pass, and the scan's end with its deletions settled.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from etl.pipeline.bounds import ScanBound, ScanOutOfBounds
from etl.pipeline.checkpoints import begin_writes, save_state
from etl.pipeline.deletions import DeletionGuard
from etl.pipeline.flow import Fed, Feed
from etl.pipeline.held_deletions import count_unseen, settle_deletions
from etl.pipeline.results import StageCounts, StreamResult
from etl.pipeline.staging_writes import reject_records, stage_records
from etl.pipeline.state import Scan, StreamState
from etl.sources.base import Stream


class LiveBound:
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
        """After staging: count the rows this pass had already staged, and bound them."""
        scan.repeats += counts.repeated
        distinct = max(scan.received - scan.repeats, 0)
        self.bound.check_repeats(repeats=scan.repeats, distinct=distinct, live=scan.live_before)


class StreamWriter:
    """Stages one stream's pages through ``sessions`` (bound to the writer's own connection)."""

    def __init__(self, sessions: Any, stream: Stream, state: StreamState, result: StreamResult, *, run_id: str):
        self.sessions, self.stream, self.state, self.result, self.run_id = sessions, stream, state, result, run_id
        self.bound = LiveBound(stream)
        settings = stream.settings
        self.max_rows, self.max_bytes = settings.commit_rows, settings.commit_bytes
        self.max_seconds = settings.commit_ms / 1000
        self.out_of_bounds: ScanOutOfBounds | None = None

    @property
    def scan(self) -> Scan:
        assert self.state.scan is not None, "no scan in progress"
        return self.state.scan

    async def commit_pages(self, first: Fed, feed: Feed) -> bool:
        """One transaction: ``first`` and the pages already waiting, within the bounds. True when the
        scan starts a new pass (the feed must be closed: its pages belong to the old one)."""
        tally, rows, size, fed = StageCounts(), _rows(first), first.size, first
        async with self.sessions() as session, session.begin():
            await begin_writes(session)
            started = time.monotonic()
            while True:
                chunk = [fed]
                while rows < self.max_rows and size < self.max_bytes and (more := feed.ready()) is not None:
                    chunk.append(more)
                    rows, size = rows + _rows(more), size + more.size
                counts, restarted = await self._stage(session, chunk)
                tally.add(counts)
                ended = restarted or self.result.complete or self.out_of_bounds is not None
                if ended or rows >= self.max_rows or size >= self.max_bytes:
                    break
                if time.monotonic() - started >= self.max_seconds or (following := feed.ready()) is None:
                    break
                fed, rows, size = following, rows + _rows(following), size + following.size
            await save_state(session, self.result.source, self.stream.name, self.state)
        self.result.counts.add(tally)
        if self.out_of_bounds is not None:
            raise self.out_of_bounds
        return restarted

    async def _stage(self, session: Any, chunk: list[Fed]) -> tuple[StageCounts, bool]:
        """Stage ``chunk`` in the open transaction and move each partition's cursor past its pages."""
        scan, stream = self.scan, self.stream
        mark, taken, shifted = scan.pass_id, [], False
        for fed in chunk:
            page, split = fed.page, fed.split
            received = page.received if page.received is not None else len(split.good) + len(split.bad)
            try:
                self.bound.check(scan, received, page.evidence.total)
            except ScanOutOfBounds as exc:
                self.out_of_bounds = exc  # raised once the pages before it, in this transaction, commit
                break
            scan.note(received=received, total=page.evidence.total, doubt=page.evidence.doubt)
            if split.unidentified and scan.mode == "full":
                scan.doubt(f"rejected records without a readable id ({split.unidentified} on a page): any of them "
                           "may be a staged row seen again")  # fmt: skip
            scan.advance(fed.partition, page.next_cursor, page.watermark)
            taken.append(fed)
            if scan.mode == "full" and page.evidence.shifted:
                if scan.passes <= stream.settings.max_rereads:
                    shifted = True
                    break
                scan.doubt(f"rows kept moving after {scan.passes - 1} re-reads: {page.evidence.shifted}")
        if not taken:
            return StageCounts(), False
        where = {"source": self.result.source, "entity": stream.entity, "run_id": self.run_id}
        good = [row for fed in taken for row in fed.split.good]
        tombstones = _tombstones(taken)
        counts = None
        if scan.fresh:
            counts = await stage_records(session, **where, records=good, scan_mark=mark, tombstones=tombstones,
                                         assume_new=True)  # fmt: skip
            scan.fresh = counts is not None
        if counts is None:
            counts = await stage_records(session, **where, records=good, scan_mark=mark, tombstones=tombstones)
        self.bound.check_repeats(scan, counts)
        bad = [rejection for fed in taken for rejection in fed.split.bad]
        await reject_records(session, **where, rejections=bad, scan_mark=mark)
        counts.rejected, counts.records = len(bad), counts.records + len(bad)
        counts.pages, counts.calls = len(taken), sum(fed.page.calls for fed in taken)
        if shifted:
            scan.restart(str(uuid.uuid4()), stream.start(None))
            return counts, True
        if scan.finished and await self._confirming_pass(session):
            return counts, True
        if scan.finished:
            await finish_scan(session, stream, self.state, self.result, run_id=self.run_id, counts=counts)
        return counts, False

    async def _confirming_pass(self, session: Any) -> bool:
        """An offset-paged full pass that ended with rows missing is read again: only rows missing
        from both passes are deleted."""
        scan, stream = self.scan, self.stream
        if scan.mode != "full" or not stream.offset_paged or scan.confirming:
            return False
        markers = scan.markers
        if not await count_unseen(session, source=self.result.source, entity=stream.entity, markers=markers):
            return False
        scan.restart(str(uuid.uuid4()), stream.start(None), confirm=True)
        return True


def _rows(fed: Fed) -> int:
    return len(fed.split.good) + len(fed.split.bad)


def _tombstones(taken: list[Fed]) -> frozenset[str]:
    """Ids whose last copy in these pages is the server's deletion flag."""
    if not any(fed.split.gone for fed in taken):
        return frozenset()
    gone: set[str] = set()
    for fed in taken:
        for source_id, _text, _digest in fed.split.good:
            (gone.add if source_id in fed.split.gone else gone.discard)(source_id)
    return frozenset(gone)


async def finish_scan(
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
