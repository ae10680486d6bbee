"""Typed scan state: where a stream stands, and the scan in progress, with named steps.

Serialised to ``stream_states.state`` (JSON) and committed with every staged page::

    {"watermark": {...} | null,       # where the next incremental scan starts
     "last_complete_at": "...", "last_scan_mode": "full" | "incremental",
     "scan": {"id", "runs": [...], "mode", "started_at",
              "cursors": [{...} | null, ...],   # one per partition; null = partition done
              "next_watermark": {...} | null}}  # null until the scan's first page says

A scan holds a list of cursors: one today, several once a scan is split into partitions.
The next run's watermark has one notion only: what the *first* staged page of a scan said
of the server's time (:attr:`etl.sources.base.Page.watermark`), kept when the scan finishes.

Pure: no I/O here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Cursor = dict[str, Any]
ScanMode = Literal["full", "incremental"]


@dataclass
class Scan:
    """One pass over a stream, possibly spread over several runs (a killed run is resumed)."""

    id: str
    mode: ScanMode
    cursors: list[Cursor | None]
    runs: list[str] = field(default_factory=list)
    next_watermark: Cursor | None = None
    started_at: str = ""

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

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "runs": list(self.runs),
            "cursors": list(self.cursors),
            "next_watermark": self.next_watermark,
            "started_at": self.started_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scan:
        # Rows written before scans had partitions hold a single "cursor".
        cursors = data["cursors"] if "cursors" in data else [data.get("cursor")]
        return cls(
            id=str(data["id"]),
            mode="incremental" if data.get("mode") == "incremental" else "full",
            cursors=list(cursors),
            runs=list(data.get("runs") or [data["id"]]),
            next_watermark=data.get("next_watermark"),
            started_at=str(data.get("started_at") or ""),
        )


@dataclass
class StreamState:
    """Where one stream of one source stands between and during runs."""

    watermark: Cursor | None = None
    last_complete_at: str | None = None
    last_scan_mode: ScanMode | None = None
    scan: Scan | None = None

    def begin(self, *, run_id: str, full: bool, incremental: bool, start: Callable[[Cursor | None], Cursor]) -> Scan:
        """Resume the scan in progress, or start one: full when asked (a full request replaces an
        incremental scan in progress), when the stream is not incremental, or with no watermark yet."""
        if self.scan is not None and not (full and self.scan.mode != "full"):
            self.scan.join(run_id)
            return self.scan
        since = None if full or not incremental else self.watermark
        self.scan = Scan(
            id=run_id,
            mode="incremental" if since else "full",
            cursors=[start(since)],
            runs=[run_id],
            started_at=datetime.now(UTC).isoformat(),
        )
        return self.scan

    def finish(self) -> Scan:
        """The scan is complete: its watermark becomes the next run's starting point."""
        assert self.scan is not None, "no scan in progress"
        scan, self.scan = self.scan, None
        self.watermark = scan.next_watermark or self.watermark
        self.last_complete_at = datetime.now(UTC).isoformat()
        self.last_scan_mode = scan.mode
        return scan

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "watermark": self.watermark,
            "last_complete_at": self.last_complete_at,
            "last_scan_mode": self.last_scan_mode,
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
            scan=Scan.from_json(scan) if isinstance(scan, dict) else None,
        )
