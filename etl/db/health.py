"""Fail fast, with one line, when a configured database cannot be reached."""

from __future__ import annotations

import asyncio

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from etl.db.engine import create_engine, sqlite_file
from etl.db.migrate import head_revision
from etl.redaction import sanitize_url
from etl.settings import ConfigError


async def ensure_reachable(
    url: str, settings_file: str, key: str = "database_url", timeout: float = 10.0, *, migrated: bool = False
) -> None:
    """Connect once; raise :class:`ConfigError` naming the key when the database is unreachable
    (or, with ``migrated``, when its schema is not at the head revision). An SQLite file that does
    not exist yet is not migrated: it is not created by asking (connecting would leave an empty one)."""
    try:
        engine = create_engine(url)
    except OSError as exc:  # the SQLite file's folder cannot be created (a file in the way, no such device)
        where = exc.filename or sanitize_url(url)
        raise ConfigError(
            settings_file, key, f"cannot create the SQLite database's folder {where}: {exc.strerror}"
        ) from None
    database = sqlite_file(url)
    if migrated and database is not None and not database.exists():
        await engine.dispose()
        raise ConfigError(settings_file, key, _not_migrated(url, None) + " (the file does not exist yet)")
    try:
        async with asyncio.timeout(timeout):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                revision = await conn.run_sync(_revision) if migrated else None
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0] or type(exc).__name__
        raise ConfigError(settings_file, key, f"database unreachable at {sanitize_url(url)}: {reason}") from None
    finally:
        await engine.dispose()
    if migrated and revision != head_revision():
        raise ConfigError(settings_file, key, _not_migrated(url, revision))


def _not_migrated(url: str, revision: str | None) -> str:
    return (
        f"database at {sanitize_url(url)} is not migrated (revision {revision or 'none'}, "
        f"expected {head_revision()}): run `etl db upgrade`"
    )


def _revision(connection: Connection) -> str | None:
    # Alembic's own reading of alembic_version: None on an empty database.
    return MigrationContext.configure(connection).get_current_revision()
