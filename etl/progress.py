"""Live per-stream progress on a terminal; the summary table at the end of a run."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from etl.pipeline.results import StageCounts

COLUMNS = ("records", "new", "changed", "unchanged", "rejected", "deleted", "pages", "calls")


class LiveProgress:
    """A rich Live table refreshed from the engine's progress callback."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.rows: dict[tuple[str, str], tuple[StageCounts, int, float]] = {}
        self.first_page: dict[tuple[str, str], float] = {}
        self._live = Live(self._table(), console=console, refresh_per_second=4, transient=True)

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.__exit__(*exc)

    def __call__(self, source: str, stream: str, counts: StageCounts, retries: int = 0) -> None:
        first_seen = self.first_page.setdefault((source, stream), time.monotonic())
        self.rows[(source, stream)] = (counts, retries, first_seen)
        self._live.update(self._table())

    def _table(self) -> Table:
        table = Table("source", "stream", "records", "pages", "retries", "rate/s", title="extracting")
        for (source, stream), (counts, retries, first_seen) in sorted(self.rows.items()):
            elapsed = max(time.monotonic() - first_seen, 1e-6)
            rate = f"{counts.records / elapsed:,.0f}"
            table.add_row(Text(source), Text(stream), f"{counts.records:,}", str(counts.pages), str(retries), rate)
        return table


def summary_table(results: list[Any], retries: dict[str, int] | None = None) -> Table:
    """One row per stream with its counts and status; names and reasons as plain text, never markup
    (whatever console prints the table)."""
    table = Table("source", "stream", *COLUMNS, "retries", title="extract summary")
    table.add_column("status", overflow="fold")
    for result in results:
        counts = result.counts.as_dict()
        # The whole reason (the server's own words are what an operator acts on), as plain text:
        # server text may hold brackets that rich would otherwise read as markup.
        status = Text(result.status if not result.error else f"{result.status}: {result.error[:400]}")
        table.add_row(
            Text(result.source),
            Text(result.stream),
            *(str(counts[c]) for c in COLUMNS),
            str((retries or {}).get(result.source, 0)),
            status,
        )
    return table
