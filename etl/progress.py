"""Live per-stream progress on a terminal; the summary table at the end of a run."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from etl.pipeline.staging import StageCounts

COLUMNS = ("records", "new", "changed", "unchanged", "rejected", "deleted", "pages", "calls")


class LiveProgress:
    """A rich Live table refreshed from the engine's progress callback."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.rows: dict[tuple[str, str], StageCounts] = {}
        self.started = time.monotonic()
        self.retries: dict[str, int] = {}
        self._live = Live(self._table(), console=console, refresh_per_second=4, transient=True)

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.__exit__(*exc)

    def __call__(self, source: str, stream: str, counts: StageCounts) -> None:
        self.rows[(source, stream)] = counts
        self._live.update(self._table())

    def _table(self) -> Table:
        table = Table("source", "stream", "records", "pages", "rate/s", title="extracting")
        elapsed = max(time.monotonic() - self.started, 1e-6)
        for (source, stream), counts in sorted(self.rows.items()):
            table.add_row(source, stream, str(counts.records), str(counts.pages), f"{counts.records / elapsed:,.0f}")
        return table


def summary_table(results: list[Any], retries: dict[str, int] | None = None) -> Table:
    """One row per stream with its counts and status."""
    table = Table("source", "stream", *COLUMNS, "retries", "status", title="extract summary")
    for result in results:
        counts = result.counts.as_dict()
        status = result.status if not result.error else f"{result.status}: {result.error[:80]}"
        table.add_row(
            result.source,
            result.stream,
            *(str(counts[c]) for c in COLUMNS),
            str((retries or {}).get(result.source, 0)),
            status,
        )
    return table
