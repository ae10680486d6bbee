"""Typed scan state: where a stream stands, and the scan in progress, with named steps.

Serialised to ``stream_states.state`` (JSON) and committed with every staged page::

    {"watermark": {...} | null,       # where the next incremental scan starts
     "last_complete_at": "...", "last_scan_mode": "full" | "incremental",
     "last_full_at": "..." | null,    # when the last complete *full* scan finished
     "scan": {"id", "runs": [...], "mode", "started_at", "sweep": bool,
              "cursors": [{...} | null, ...],   # one per partition; null = partition done
              "next_watermark": {...} | null,   # null until the scan's first page says
              "pass_id", "markers": [...], "passes": 1,   # which staged rows this pass saw
              "received": N, "pages": N,       # rows and pages this pass read (etl.pipeline.bounds)
              "live_before": N, "repeats": N,  # live rows when the scan began; rows received twice
              "total": N | null, "doubts": [...],  # completeness evidence
              "confirming": bool,             # a second pass confirming an offset-paged pass's deletions
              "partitioned": bool,            # the pass was split into its partitions (once)
              "ranges": [{...}, ...],         # each partition's first cursor (what it covers)
              "fresh": bool}}                 # no staged row of the stream when the scan began

A scan holds a list of cursors, one per partition: a keyset stream's pass is split into id
ranges read at once (:meth:`etl.sources.base.Stream.partition`), each resumed at its own cursor.
The next run's watermark has one notion only: what the *first* staged page of a scan said
of the server's time (:attr:`etl.sources.base.Page.watermark`), kept when the scan finishes.

A *pass* is one read of the whole list. Every row staged in it gets the pass id
(``staged_records.seen_scan``); a full scan marks deleted only rows whose mark is none of
``markers``. A scan has one pass unless the server showed rows moving under offset paging
(:meth:`Scan.restart`); a killed run's successor continues the same pass.

Pure: no I/O here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Cursor = dict[str, Any]
ScanMode = Literal["full", "incremental"]
MAX_DOUBTS = 5  # distinct failed checks kept per pass; one is enough to hold the deletions


@dataclass
class Scan:
    """One pass over a stream, possibly spread over several runs (a killed run is resumed)."""

    id: str
    mode: ScanMode
    cursors: list[Cursor | None]
    runs: list[str] = field(default_factory=list)
    next_watermark: Cursor | None = None
    started_at: str = ""
    sweep: bool = False
    pass_id: str = ""
    markers: list[str] = field(default_factory=list)
    passes: int = 1
    received: int = 0
    total: int | None = None
    doubts: list[str] = field(default_factory=list)
    confirming: bool = False
    pages: int = 0
    live_before: int = 0
    repeats: int = 0
    partitioned: bool = False  # whether this pass was split into partitions (once, when it began)
    ranges: list[Cursor] = field(default_factory=list)  # each partition's first cursor, as split
    # The stream had no staged row at all when the scan began: its rows are inserted without a lookup
    # first, until one turns out to be staged already (etl.pipeline.staging_writes.stage_records).
    fresh: bool = False

    def __post_init__(self) -> None:
        self.pass_id = self.pass_id or self.id
        self.markers = self.markers or [self.pass_id]

    @property
    def finished(self) -> bool:
        return all(cursor is None for cursor in self.cursors)

    def join(self, run_id: str) -> None:
        """Record that ``run_id`` works on this scan (deletion marks look at every run of a scan)."""
        if run_id not in self.runs:
            self.runs.append(run_id)

    def advance(self, partition: int, next_cursor: Cursor | None, watermark: Cursor | None = None) -> None:
        """A page of ``partition`` was staged: move its cursor; the scan's first watermark is kept."""
        self.cursors[partition] = next_cursor
        if watermark is not None and self.next_watermark is None:
            self.next_watermark = watermark

    def note(self, *, received: int, total: int | None, doubt: str | None) -> None:
        """What a staged page said of completeness: rows it answered, the server's total, a failed check."""
        self.received += received
        self.pages += 1
        if total is not None:
            self.total = total
        self.doubt(doubt)

    def doubt(self, doubt: str | None) -> None:
        """A failed completeness check of this pass (one is enough to hold its deletions)."""
        if doubt and doubt not in self.doubts and len(self.doubts) < MAX_DOUBTS:
            self.doubts.append(doubt)

    def restart(self, pass_id: str, cursor: Cursor, *, confirm: bool = False) -> None:
        """Read the whole list again in a new pass. Rows moved under offset paging during this one: the
        new pass alone counts. ``confirm``: this pass was consistent, and the next must confirm its
        deletions (only rows missing from both are deleted)."""
        self.markers = [*self.markers, pass_id] if confirm else [pass_id]
        self.pass_id, self.passes, self.confirming = pass_id, self.passes + 1, confirm
        self.cursors, self.partitioned, self.ranges, self.fresh = [cursor], False, [], False
        self.received, self.total, self.doubts, self.pages, self.repeats = 0, None, [], 0, 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "runs": list(self.runs),
            "cursors": list(self.cursors),
            "next_watermark": self.next_watermark,
            "started_at": self.started_at,
            "sweep": self.sweep,
            "pass_id": self.pass_id,
            "markers": list(self.markers),
            "passes": self.passes,
            "received": self.received,
            "total": self.total,
            "doubts": list(self.doubts),
            "confirming": self.confirming,
            "pages": self.pages,
            "live_before": self.live_before,
            "repeats": self.repeats,
            "partitioned": self.partitioned,
            "ranges": list(self.ranges),
            "fresh": self.fresh,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scan:
        # Rows written before scans had partitions hold a single "cursor"; before passes, the rows a
        # scan saw were those of its runs (migration 0005 copied last_seen_run into seen_scan).
        cursors = data["cursors"] if "cursors" in data else [data.get("cursor")]
        runs = list(data.get("runs") or [data["id"]])
        total = data.get("total")
        return cls(
            id=str(data["id"]),
            mode="incremental" if data.get("mode") == "incremental" else "full",
            cursors=list(cursors),
            runs=runs,
            next_watermark=data.get("next_watermark"),
            started_at=str(data.get("started_at") or ""),
            sweep=bool(data.get("sweep")),
            pass_id=str(data.get("pass_id") or data["id"]),
            markers=[str(m) for m in data.get("markers") or runs],
            passes=int(data.get("passes") or 1),
            received=int(data.get("received") or 0),
            total=int(total) if isinstance(total, int) else None,
            doubts=[str(d) for d in data.get("doubts") or []],
            confirming=bool(data.get("confirming")),
            pages=int(data.get("pages") or 0),
            live_before=int(data.get("live_before") or 0),
            repeats=int(data.get("repeats") or 0),
            # A scan begun before partitions existed has one cursor, possibly mid-list: it may be split.
            partitioned=bool(data.get("partitioned")),
            ranges=[r for r in data.get("ranges") or [] if isinstance(r, dict)],
            fresh=bool(data.get("fresh")),
        )


@dataclass
class StreamState:
    """Where one stream of one source stands between and during runs."""

    watermark: Cursor | None = None
    last_complete_at: str | None = None
    last_scan_mode: ScanMode | None = None
    last_full_at: str | None = None
    scan: Scan | None = None

    def begin(
        self,
        *,
        run_id: str,
        full: bool,
        incremental: bool,
        start: Callable[[Cursor | None], Cursor],
        sweep_every: timedelta | None = None,
        now: datetime | None = None,
    ) -> Scan:
        """Resume the scan in progress, or start one: full when asked (a full request replaces an
        incremental scan in progress), when the stream is not incremental, with no watermark yet,
        or as a sweep when the last complete full scan is older than ``sweep_every``."""
        if self.scan is not None and not (full and self.scan.mode != "full"):
            self.scan.join(run_id)
            return self.scan
        sweep = incremental and not full and self.watermark is not None and self.sweep_due(sweep_every, now)
        since = None if full or sweep or not incremental else self.watermark
        self.scan = Scan(
            id=run_id,
            mode="incremental" if since else "full",
            cursors=[start(since)],
            runs=[run_id],
            started_at=(now or datetime.now(UTC)).isoformat(),
            sweep=sweep,
        )
        return self.scan

    def sweep_due(self, every: timedelta | None, now: datetime | None = None) -> bool:
        """Whether the last complete full scan is older than ``every`` (never one counts as old)."""
        if every is None:
            return False
        last = self.last_full_at or (self.last_complete_at if self.last_scan_mode == "full" else None)
        if last is None:
            return True
        try:
            finished = datetime.fromisoformat(last)
        except ValueError:
            return True
        return (now or datetime.now(UTC)) - finished >= every

    def finish(self) -> Scan:
        """The scan is complete: its watermark becomes the next run's starting point."""
        assert self.scan is not None, "no scan in progress"
        scan, self.scan = self.scan, None
        self.watermark = scan.next_watermark or self.watermark
        self.last_complete_at = datetime.now(UTC).isoformat()
        self.last_scan_mode = scan.mode
        if scan.mode == "full":
            self.last_full_at = self.last_complete_at
        return scan

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "watermark": self.watermark,
            "last_complete_at": self.last_complete_at,
            "last_scan_mode": self.last_scan_mode,
            "last_full_at": self.last_full_at,
        }
        if self.scan is not None:
            data["scan"] = self.scan.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> StreamState:
        data = data or {}
        scan = data.get("scan")
        mode = data.get("last_scan_mode")
        return cls(
            watermark=data.get("watermark"),
            last_complete_at=data.get("last_complete_at"),
            last_scan_mode=mode if mode in ("full", "incremental") else None,
            last_full_at=data.get("last_full_at"),
            scan=Scan.from_json(scan) if isinstance(scan, dict) else None,
        )
