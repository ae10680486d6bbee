"""Live per-stream progress on a terminal; the summary table at the end of a run."""

from __future__ import annotations

import re
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from etl.pipeline.results import StageCounts

# C0 and C1 control characters (ESC, CR, BEL, CSI...): a server's message holding them could clear
# the operator's screen, forge lines or retitle the terminal. Tabs are harmless.
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character shown as its escape (``\\x1b``), for a terminal."""
    return _CONTROLS.sub(lambda match: repr(match.group())[1:-1], text)


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
            table.add_row(
                Text(printable(source)),
                Text(printable(stream)),
                f"{counts.records:,}",
                str(counts.pages),
                str(retries),
                rate,
            )
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
        status = Text(printable(result.status if not result.error else f"{result.status}: {result.error[:400]}"))
        table.add_row(
            Text(printable(result.source)),
            Text(printable(result.stream)),
            *(str(counts[c]) for c in COLUMNS),
            str((retries or {}).get(result.source, 0)),
            status,
        )
    return table


def held_set_lines(entry: Any) -> list[Text]:
    """One held deletion set (:class:`etl.pipeline.held_deletions.HeldSet`) as plain lines: what, why,
    which ids, sample payloads, and the command that applies it."""
    import orjson

    hold = entry.hold
    more = "" if len(entry.ids) >= hold.would_delete else f" ... ({hold.would_delete - len(entry.ids)} more)"
    lines = [
        Text(printable(f"hold {hold.id}: {hold.source}.{hold.stream} ({hold.entity}): {hold.would_delete} of "
                       f"{hold.live_before} rows held at {hold.held_at:%Y-%m-%d %H:%M:%S} by run {hold.run_id}"),
             style="bold"),
        Text(printable(f"  {hold.reason}")),
        Text(printable(f"  ids: {', '.join(entry.ids)}{more}")),
    ]  # fmt: skip
    for source_id, payload in entry.samples:
        sample = orjson.dumps(payload, default=str).decode()[:300]
        lines.append(Text(printable(f"  sample {source_id}: {sample}")))
    lines.append(Text(f"  apply with: etl deletions accept {hold.source}.{hold.stream} --hold {hold.id}"))
    return lines
