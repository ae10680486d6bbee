"""The ``etl`` command: parses arguments, calls a job or a pipeline step, renders tables.

Exit codes: 0 success, 1 run failure, 2 usage or configuration error.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

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
# Piped output keeps whole tables (rich assumes 80 columns without a terminal). No markup: text from
# a server, a setting or an exception is printed as written ("[/red]" would crash rich, "[id]" vanish);
# colour is given explicitly with Text styles.
console = Console(width=None if sys.stdout.isatty() else 200, markup=False)
err_console = Console(stderr=True, soft_wrap=True, markup=False)
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


class UsageProblem(Exception):
    """The command line names something that does not exist; the message lists what does."""


def error_line(label: str, message: str) -> None:
    """One line on stderr: ``label:`` in red, then ``message`` redacted, as plain text."""
    from etl.progress import printable
    from etl.redaction import redact

    err_console.print(Text.assemble((f"{label}:", "red"), " ", printable(redact(message))), highlight=False)


def _debug_traceback() -> None:
    # A plain traceback, redacted: rich's own would print exception messages unmasked.
    import traceback

    from etl.redaction import redact

    if CTX.debug:
        err_console.print(Text(redact(traceback.format_exc())), highlight=False)


def _run_lock_errors() -> type[Exception]:
    # An except clause's class is looked up only when an exception reaches it: commands that fail
    # otherwise, or not at all, never import the database layer for it.
    from etl.db.runlock import RunLockError

    return RunLockError


def reports_errors(fn: F) -> F:
    """Turn configuration problems into exit 2 and run failures into exit 1, one line each."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except ConfigError as exc:
            _debug_traceback()
            error_line("configuration error", str(exc))
            raise typer.Exit(EXIT_USAGE) from None
        except UsageProblem as exc:
            error_line("usage error", str(exc))
            raise typer.Exit(EXIT_USAGE) from None
        except RunFailed as exc:
            error_line("run failed", str(exc))
            raise typer.Exit(EXIT_RUN_FAILED) from None
        except _run_lock_errors() as exc:
            error_line("error", str(exc))
            raise typer.Exit(EXIT_RUN_FAILED) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:
            _debug_traceback()
            error_line("error", f"{type(exc).__name__}: {exc}")
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


def checked_database_url(*, migrated: bool = True) -> str:
    """The configured database URL, once it answers (and, unless ``migrated`` is False, is at head)."""
    from etl.db.health import ensure_reachable

    settings = CTX.settings()
    key = "database_url (from ETL_DATABASE_URL)" if os.environ.get("ETL_DATABASE_URL") else "database_url"
    asyncio.run(ensure_reachable(settings.database_url, settings.settings_file, key, migrated=migrated))
    return settings.database_url


@db_app.command("upgrade")
@reports_errors
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or migrate the staging schema."""
    from etl.db import migrate
    from etl.redaction import sanitize_url

    url = checked_database_url(migrated=False)
    _locked("db upgrade", url, migrate.upgrade, revision)
    console.print(f"{sanitize_url(url)}: {migrate.current(url) or 'base'}", highlight=False)


@db_app.command("downgrade")
@reports_errors
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. base or -1.")]) -> None:
    """Migrate the staging schema down to REVISION."""
    from etl.db import migrate

    url = checked_database_url(migrated=False)
    _locked("db downgrade", url, migrate.downgrade, revision)
    console.print(migrate.current(url) or "base", highlight=False)


def _locked(job: str, url: str, migration: Callable[[str, str], None], revision: str) -> None:
    """Run ``migration(url, revision)`` holding the run lock: refused while a run holds it (a
    column dropped under a running extract), and no run starts until it has finished."""
    from etl.db.runlock import run_lock
    from etl.db.runs import new_run_id

    async def locked() -> None:
        async with run_lock(url, run_id=new_run_id(), job=job, schema_changes=True):
            # Called with the loop running, migrate runs Alembic in a thread and joins it, holding
            # the loop: an interrupt lands only once Alembic is done, so the lock outlives it.
            migration(url, revision)

    asyncio.run(locked())


@db_app.command("current")
@reports_errors
def db_current() -> None:
    """Show the staging schema's revision."""
    from etl.db import migrate

    console.print(migrate.current(checked_database_url(migrated=False)) or "base (empty database)", highlight=False)


@config_app.command("check")
@reports_errors
def config_check() -> None:
    """Validate the settings and print them resolved, secrets masked."""
    from etl.redaction import REDACTOR, sanitize_url

    settings = CTX.settings()
    data = settings.model_dump(mode="json")
    for key in ("database_url", "reporting_url"):
        data[key] = sanitize_url(data[key])
    for source in data["sources"]:
        source["base_url"] = sanitize_url(source["base_url"])
    console.print(Text.assemble(("ok", "green"), f": {settings.settings_file}"), highlight=False)
    console.print_json(data=REDACTOR.strings(data))


@app.command("runs")
@reports_errors
def runs(limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20) -> None:
    """Recent runs, newest first; the run holding the run lock, if one does, is marked and named."""
    from etl.db.runlock import current_holder
    from etl.db.runs import recent_runs
    from etl.progress import printable

    url = checked_database_url()
    rows = asyncio.run(recent_runs(url, limit))
    holder = asyncio.run(current_holder(url))
    table = Table("run", "job", "trigger", "started (UTC)", "duration", "status", "records", "error")
    for run in rows:
        # An abandoned run's finished_at is when a later run found it, not when it stopped.
        ended = run.finished_at is not None and run.status != "abandoned"
        duration = f"{(run.finished_at - run.started_at).total_seconds():.1f}s" if ended else "-"
        status = f"{run.status} (holds lock)" if holder and holder.run_id == run.id else run.status
        records = sum(int(c.get("records", 0)) for c in (run.counts or {}).values() if isinstance(c, dict))
        table.add_row(
            run.id[:8], run.job, run.trigger, run.started_at.strftime("%Y-%m-%d %H:%M:%S"), duration,
            status, str(records), Text(printable(run.error or "")[:60]),
        )  # fmt: skip
    console.print(table)
    if holder:
        console.print(Text(f"run lock held by {holder}"), highlight=False)


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
    from jobs.extract import run_extract

    settings = CTX.settings()
    _check_names(settings, source or [], stream or [])
    checked_database_url()
    run = functools.partial(run_extract, settings, sources=source or (), streams=stream or (), full=full)
    if console.is_terminal:
        with LiveProgress(console) as live:
            report = asyncio.run(run(progress=live))
    else:
        report = asyncio.run(run())
    _render_report(report)


def _check_names(settings: Settings, sources: list[str], streams: list[str]) -> None:
    """Every ``--source`` and ``--stream`` names something that exists, or :class:`UsageProblem` listing what does."""
    from etl.sources import registry
    from jobs.extract import select_sources

    known = [s.name for s in settings.sources]
    if unknown := [n for n in sources if n not in known]:
        where = f"configured in {settings.settings_file}: {', '.join(known) or 'none'}"
        raise UsageProblem(f"--source {', '.join(unknown)}: no such source ({where})")
    chosen = select_sources(settings, sources)
    valid = sorted({name for s in chosen for name in registry.get(s.kind).stream_names()})
    if unknown := [n for n in streams if n not in valid]:
        raise UsageProblem(f"--stream {', '.join(unknown)}: no such stream in the chosen sources ({', '.join(valid)})")


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
    from etl.redaction import sanitize_url
    from jobs.demo import run_demo

    settings = CTX.settings()
    checked_database_url(migrated=False)  # the demo migrates the database itself
    result = asyncio.run(run_demo(settings, scale=scale, seed=seed, faults=faults))
    table = Table("source", "entity", "staged records", title=f"staged in {sanitize_url(settings.database_url)}")
    for source, entity, count in result.staged:
        table.add_row(source, entity, f"{count:,}")
    console.print(table)
    console.print(f"rejected records: {result.rejected}", highlight=False)
    _render_report(result.report)


@deletions_app.command("list")
@reports_errors
def deletions_list(
    all_ids: Annotated[bool, typer.Option("--all", help="Every held id, not the first 50.")] = False,
) -> None:
    """Held deletion sets: stream, reason, counts, ids and sample payloads."""
    from etl.progress import held_set_lines
    from jobs.deletions import held

    checked_database_url()
    holds = asyncio.run(held(CTX.settings(), id_limit=None if all_ids else 50))
    for line in [line for entry in holds for line in held_set_lines(entry)] or [Text("no deletions are held")]:
        console.print(line, highlight=False)


@deletions_app.command("accept")
@reports_errors
def deletions_accept(
    target: Annotated[str, typer.Argument(metavar="SOURCE.STREAM", help="The stream whose held set to apply.")],
    hold: Annotated[int | None, typer.Option("--hold", help="The hold reviewed: refused if superseded.")] = None,
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


def _interrupt(_signum: int, _frame: object) -> None:
    signal.raise_signal(signal.SIGINT)


def main() -> None:
    """Console-script entry point; SIGTERM stops a command as Ctrl-C does."""
    # asyncio.run turns SIGINT into a cancellation of the job, which closes its run row as failed
    # and releases the lock on the way out. SIGTERM (kill, systemd, docker stop) would end the
    # process on the spot and leave its run `running` until the next holder marks it abandoned.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except SystemExit as exc:
        sys.exit(exc.code)
