"""``etl deletions list|accept``: the sets the deletion guard holds, shown and applied on an operator's word."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.text import Text

from etl.cli import CTX, EXIT_USAGE, checked_database_url, console, error_line, reports_errors
from etl.progress import printable

deletions_app = typer.Typer(help="Deletions held by the deletion guard: list, accept.", no_args_is_help=True)


@deletions_app.command("list")
@reports_errors
def deletions_list(
    all_ids: Annotated[bool, typer.Option("--all", help="Every held id, not the first 50.")] = False,
) -> None:
    """Held deletion sets: stream, reason, counts, ids and sample payloads."""
    from jobs.deletions import held

    checked_database_url()
    holds = asyncio.run(held(CTX.settings(), id_limit=None if all_ids else 50))
    if not holds:
        console.print("no deletions are held", highlight=False)
        return
    for entry in holds:
        hold = entry.hold
        console.print(
            Text(f"hold {hold.id}: {hold.source}.{hold.stream} ({hold.entity}): {hold.would_delete} of "
                 f"{hold.live_before} rows held at {hold.held_at:%Y-%m-%d %H:%M:%S} by run {hold.run_id}", style="bold")
        )  # fmt: skip
        console.print(Text(printable(f"  {hold.reason}")))
        more = "" if len(entry.ids) >= hold.would_delete else f" ... ({hold.would_delete - len(entry.ids)} more)"
        console.print(Text(printable(f"  ids: {', '.join(entry.ids)}{more}")))
        for source_id, payload in entry.samples:
            console.print(Text(printable(f"  sample {source_id}: {_json_line(payload)[:300]}")))
        console.print(Text(f"  apply with: etl deletions accept {hold.source}.{hold.stream} --hold {hold.id}"))


def _json_line(payload: Any) -> str:
    import orjson

    return orjson.dumps(payload, default=str).decode()


@deletions_app.command("accept")
@reports_errors
def deletions_accept(
    target: Annotated[str, typer.Argument(metavar="SOURCE.STREAM", help="The stream whose held set to apply.")],
    hold: Annotated[
        int | None, typer.Option("--hold", help="The hold reviewed (from etl deletions list): refused if superseded.")
    ] = None,
) -> None:
    """Mark a held set deleted: exactly the rows held, minus those seen since."""
    from jobs.deletions import NothingHeld, accept

    settings = CTX.settings()
    checked_database_url()
    try:
        done = asyncio.run(accept(settings, target, hold))
    except (NothingHeld, ValueError) as exc:
        error_line("error", str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    console.print(
        f"{target}: {done.applied} of {done.held} held rows marked deleted ({done.seen_since} seen since, kept)",
        highlight=False,
    )
