"""Fresh staging databases for each measurement, their size on disk, and the disk a run will need.

Every database made here is migrated to head before a worker touches it and is dropped again
(SQLite: its file, ``-wal`` and ``-shm`` deleted; PostgreSQL: ``DROP DATABASE ... WITH (FORCE)``),
also when the run fails or is interrupted: :class:`Databases` remembers what it made until dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from etl.db import migrate

KINDS = ("sqlite", "postgresql")
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")
# Staged bytes per byte of payload text: the row's other columns, the unique index, page slack.
OVERHEAD = 1.2


@dataclass(frozen=True)
class Database:
    """One staging database: its kind, URL, and the file or database name it lives in."""

    kind: str
    url: str
    name: str

    def files(self) -> list[Path]:
        return [Path(self.name + suffix) for suffix in SQLITE_COMPANIONS]


def _admin_kwargs(url: URL) -> dict[str, Any]:
    return {"host": url.host, "port": url.port or 5432, "user": url.username, "password": url.password,
            "database": url.database}  # fmt: skip


async def _admin(url: URL, sql: str, *args: Any) -> Any:
    import asyncpg

    connection = await asyncpg.connect(**_admin_kwargs(url))
    try:
        return await connection.fetchval(sql, *args)
    finally:
        await connection.close()


class Databases:
    """Makes fresh migrated databases in ``folder`` (SQLite) or on the PostgreSQL of ``admin_url``."""

    def __init__(self, folder: Path, admin_url: str) -> None:
        self.folder, self.admin = folder, make_url(admin_url)
        self.live: list[Database] = []

    def create(self, kind: str) -> Database:
        tag = uuid.uuid4().hex[:10]
        if kind == "sqlite":
            path = self.folder / f"staging-{tag}.db"
            database = Database(kind, f"sqlite+aiosqlite:///{path}", str(path))
        else:
            name = f"etl_bench_{tag}"
            asyncio.run(_admin(self.admin, f'CREATE DATABASE "{name}"'))
            url = self.admin.set(database=name).render_as_string(hide_password=False)
            database = Database(kind, url, name)
        self.live.append(database)
        migrate.upgrade(database.url)
        return database

    def size_bytes(self, database: Database) -> int:
        """What the database takes on disk now: SQLite's files, PostgreSQL's ``pg_database_size``."""
        if database.kind == "sqlite":
            return sum(path.stat().st_size for path in database.files() if path.exists())
        return int(asyncio.run(_admin(self.admin, "SELECT pg_database_size($1)", database.name)))

    def drop(self, database: Database) -> None:
        if database.kind == "sqlite":
            for path in database.files():
                path.unlink(missing_ok=True)
        else:
            asyncio.run(_admin(self.admin, f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)'))
        with contextlib.suppress(ValueError):
            self.live.remove(database)

    def drop_all(self) -> None:
        """Drop whatever is still there; each attempt on its own, so one failure leaves no other behind."""
        for database in list(self.live):
            try:
                self.drop(database)
            except Exception as exc:  # reported, and the next one is still dropped
                print(f"could not drop {database.kind} database {database.name}: {exc}")

    @contextlib.contextmanager
    def fresh(self, kind: str) -> Iterator[Database]:
        database = self.create(kind)
        try:
            yield database
        finally:
            self.drop(database)

    def postgresql_problem(self) -> str | None:
        """Why the PostgreSQL server cannot be used, or None when it answers."""
        try:
            asyncio.run(_admin(self.admin, "SELECT 1"))
        except Exception as exc:  # any failure to connect is reported the same way
            shown = self.admin.render_as_string(hide_password=True)
            return f"PostgreSQL at {shown} does not answer ({type(exc).__name__}: {exc})"
        return None

    def postgresql_data_directory(self) -> Path | None:
        """PostgreSQL's data directory when it is on this machine and readable, else None."""
        try:
            folder = Path(asyncio.run(_admin(self.admin, "SHOW data_directory")))
        except Exception:  # not a superuser, or no server: the check is skipped, not the run
            return None
        return folder if folder.exists() else None


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def disk_needed(records: int, record_bytes: float) -> int:
    """The largest single staging database of a run: one exists at a time, each dropped after use."""
    return int(records * record_bytes * OVERHEAD)
