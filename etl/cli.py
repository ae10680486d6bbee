"""The ``etl`` command: parses arguments, calls a job or a pipeline step, renders tables.

Exit codes: 0 success, 1 run failure, 2 usage or configuration error.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from etl.settings import ConfigError, Settings, load_settings

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE = 0, 1, 2
app = typer.Typer(
    help="billing-etl: sync MikroBILL, Microbizz, BILLmanager and miclinik with SQL.", no_args_is_help=True
)
db_app = typer.Typer(help="Staging database schema (Alembic).", no_args_is_help=True)
config_app = typer.Typer(help="Settings.", no_args_is_help=True)
deletions_app = typer.Typer(help="Deletions held by the deletion guard: list, accept.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(deletions_app, name="deletions")
# Piped output keeps whole tables (rich assumes 80 columns without a terminal).
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Context:
    settings_file: Path | None = None
    log_format: str = "auto"
    debug: bool = False
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            from etl.logging import configure_logging

            self._settings = load_settings(self.settings_file)
            configure_logging(
                fmt=self.log_format,
                level="debug" if self.debug else self._settings.log_level,
                secrets=self._settings.secret_values(),
                secret_names=self._settings.secret_names(),
            )
        return self._settings


CTX = Context()


class RunFailed(Exception):
    """A job ran and failed; the message says what failed."""


def reports_errors(fn: F) -> F:
    """Turn configuration problems into exit 2 and run failures into exit 1, one line each."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from etl.redaction import redact

        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except ConfigError as exc:
            if CTX.debug:
                err_console.print_exception()
            err_console.print(f"[red]configuration error:[/red] {redact(str(exc))}", highlight=False)
            raise typer.Exit(EXIT_USAGE) from None
        except RunFailed as exc:
            err_console.print(f"[red]run failed:[/red] {redact(str(exc))}", highlight=False)
            raise typer.Exit(EXIT_RUN_FAILED) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:
            if CTX.debug:
                err_console.print_exception()
            err_console.print(f"[red]error:[/red] {redact(f'{type(exc).__name__}: {exc}')}", highlight=False)
            raise typer.Exit(EXIT_RUN_FAILED) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def root(
    settings: Annotated[
        Path | None, typer.Option("--settings", help="Settings file (default: $ETL_SETTINGS or ./settings.yaml).")
    ] = None,
    log_format: Annotated[str, typer.Option("--log-format", help="auto | json | console")] = "auto",
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
) -> None:
    if log_format not in ("auto", "json", "console"):
        raise typer.BadParameter("must be auto, json or console", param_hint="--log-format")
    CTX.settings_file, CTX.log_format, CTX.debug, CTX._settings = settings, log_format, debug, None


def _database_url() -> str:
    from etl.db.health import ensure_reachable

    settings = CTX.settings()
    key = "database_url (from ETL_DATABASE_URL)" if os.environ.get("ETL_DATABASE_URL") else "database_url"
    asyncio.run(ensure_reachable(settings.database_url, settings.settings_file, key))
    return settings.database_url


@db_app.command("upgrade")
@reports_errors
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or migrate the staging schema."""
    from etl.db import migrate
    from etl.redaction import sanitize_url

    url = _database_url()
    migrate.upgrade(url, revision)
    console.print(f"{sanitize_url(url)}: {migrate.current(url) or 'base'}", highlight=False)


@db_app.command("downgrade")
@reports_errors
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. base or -1.")]) -> None:
    """Migrate the staging schema down to REVISION."""
    from etl.db import migrate

    url = _database_url()
    migrate.downgrade(url, revision)
    console.print(migrate.current(url) or "base", highlight=False)


@db_app.command("current")
@reports_errors
def db_current() -> None:
    """Show the staging schema's revision."""
    from etl.db import migrate

    console.print(migrate.current(_database_url()) or "base (empty database)", highlight=False)


@config_app.command("check")
@reports_errors
def config_check() -> None:
    """Validate the settings and print them resolved, secrets masked."""
    from etl.redaction import sanitize_url

    settings = CTX.settings()
    data = settings.model_dump(mode="json")
    for key in ("database_url", "reporting_url"):
        data[key] = sanitize_url(data[key])
    for source in data["sources"]:
        source["base_url"] = sanitize_url(source["base_url"])
    console.print(f"[green]ok[/green]: {settings.settings_file}", highlight=False)
    console.print_json(data=data)


@app.command("runs")
@reports_errors
def runs(limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20) -> None:
    """Recent runs, newest first."""
    from etl.db.runs import recent_runs

    rows = asyncio.run(recent_runs(_database_url(), limit))
    table = Table("run", "job", "trigger", "started (UTC)", "duration", "status", "records", "error")
    for run in rows:
        duration = f"{(run.finished_at - run.started_at).total_seconds():.1f}s" if run.finished_at else "-"
        records = sum(int(c.get("records", 0)) for c in (run.counts or {}).values() if isinstance(c, dict))
        table.add_row(
            run.id[:8], run.job, run.trigger, run.started_at.strftime("%Y-%m-%d %H:%M:%S"), duration,
            run.status, str(records), (run.error or "")[:60],
        )  # fmt: skip
    console.print(table)


@deletions_app.command("list")
@reports_errors
def deletions_list(
    all_ids: Annotated[bool, typer.Option("--all", help="Every held id, not the first 50.")] = False,
) -> None:
    """Held deletion sets: stream, reason, counts, ids and sample payloads."""
    from rich.text import Text

    from jobs.deletions import held

    _database_url()
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
        console.print(Text(f"  {hold.reason}"))
        more = "" if len(entry.ids) >= hold.would_delete else f" ... ({hold.would_delete - len(entry.ids)} more)"
        console.print(Text(f"  ids: {', '.join(entry.ids)}{more}"))
        for source_id, payload in entry.samples:
            console.print(Text(f"  sample {source_id}: {_json_line(payload)[:300]}"))
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
    from etl.redaction import redact
    from jobs.deletions import NothingHeld, accept

    settings = CTX.settings()
    _database_url()
    try:
        done = asyncio.run(accept(settings, target, hold))
    except (NothingHeld, ValueError) as exc:
        err_console.print(f"[red]error:[/red] {redact(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    console.print(
        f"{target}: {done.applied} of {done.held} held rows marked deleted ({done.seen_since} seen since, kept)",
        highlight=False,
    )


def _render_report(report: Any) -> None:
    from etl.progress import summary_table

    console.print(summary_table(report.results, report.retries))
    console.print(f"run {report.run_id}: {report.status}", highlight=False)
    if report.status != "succeeded":
        raise RunFailed("; ".join(report.failures()))


@app.command("extract")
@reports_errors
def extract(
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Source name (repeatable).")] = None,
    stream: Annotated[list[str] | None, typer.Option("--stream", help="Stream name (repeatable).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Full scan even where incremental is possible.")] = False,
) -> None:
    """Extract sources into staging, checkpointed and resumable."""
    from etl.progress import LiveProgress
    from jobs.extract import run_extract, select_sources

    settings = CTX.settings()
    _database_url()
    try:
        select_sources(settings, source or ())
    except KeyError as exc:
        raise ConfigError(settings.settings_file, "sources", exc.args[0]) from None
    run = functools.partial(run_extract, settings, sources=source or (), streams=stream or (), full=full)
    if console.is_terminal:
        with LiveProgress(console) as live:
            report = asyncio.run(run(progress=live))
    else:
        report = asyncio.run(run())
    _render_report(report)


@app.command("simulate")
@reports_errors
def simulate(
    systems: Annotated[list[str] | None, typer.Option("--systems", help="Systems to serve (repeatable).")] = None,
    scale: Annotated[int, typer.Option(help="Customers in the generated world.")] = 2000,
    seed: Annotated[int, typer.Option(help="World and fault seed.")] = 42,
    faults: Annotated[str, typer.Option(help="Fault profile: none | flaky | hostile.")] = "none",
    base_port: Annotated[int, typer.Option(help="miclinik port; MikroBILL +1, Microbizz +2, BILLmanager +3.")] = 18000,
    truth_out: Annotated[Path | None, typer.Option(help="Write the ground-truth mapping (CSV) here first.")] = None,
) -> None:
    """Serve the four protocol-faithful simulators on 127.0.0.1 until interrupted."""
    from etl.simulators import registry
    from etl.simulators.faults import PROFILES
    from etl.simulators.serve import serve_forever
    from etl.simulators.world import World

    known = registry.names()
    chosen = systems or known
    unknown = [s for s in chosen if s not in known]
    if unknown or faults not in PROFILES:
        raise typer.BadParameter(f"unknown system {unknown} or fault profile {faults!r}")
    world = World(seed=seed, scale=scale)
    if truth_out:
        from etl.simulators.truth import write_truth

        counts = write_truth(world, truth_out, chosen)
        console.print(f"ground truth: {sum(counts.values()):,} records -> {truth_out}", highlight=False)
    asyncio.run(serve_forever(chosen, world=world, faults=faults, seed=seed, base_port=base_port))


@app.command("demo")
@reports_errors
def demo(
    scale: Annotated[int, typer.Option(help="Customers in the generated world.")] = 2000,
    seed: Annotated[int, typer.Option(help="World and fault seed.")] = 42,
    faults: Annotated[str, typer.Option(help="Fault profile: none | flaky | hostile.")] = "none",
) -> None:
    """Start the simulators in-process, extract all four systems into staging, print the counts."""
    from jobs.demo import run_demo

    settings = CTX.settings()
    _database_url()
    result = asyncio.run(run_demo(settings, scale=scale, seed=seed, faults=faults))
    table = Table("source", "entity", "staged records", title=f"staged in {settings.database_url}")
    for source, entity, count in result.staged:
        table.add_row(source, entity, f"{count:,}")
    console.print(table)
    console.print(f"rejected records: {result.rejected}", highlight=False)
    _render_report(result.report)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as exc:
        sys.exit(exc.code)
