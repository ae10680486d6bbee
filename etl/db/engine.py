"""The async engine: one per process and URL, with SQLite tuned for a single writer."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import asbool

from etl.db.types import json_text


def create_engine(url: str, **kwargs: object) -> AsyncEngine:
    """An async engine; for SQLite the parent folder is created and WAL mode switched on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if database := sqlite_file(parsed):
            database.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 60}, json_serializer=json_text, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # asyncpg's executemany streams many rows through one prepared statement; SQLAlchemy's
    # "insertmanyvalues" would prepare a fresh statement with thousands of parameters per page.
    return create_async_engine(url, pool_pre_ping=True, use_insertmanyvalues=False, json_serializer=json_text, **kwargs)


def sqlite_file(url: str | URL) -> Path | None:
    """The file a SQLite URL opens, symlinks resolved; None for an in-memory database or another backend.

    Two URLs name one database when this is equal for both: a symlink and its target, a relative
    and an absolute path, ``file:`` URIs (``?uri=true``: ``file:/abs``, ``file:///abs``,
    ``file://localhost/abs``, ``file:rel``, percent-escapes). A hard link is a second name for
    the same file that no path reveals: two hard-linked names are two databases here."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    name = parsed.database or ""
    if asbool(parsed.query.get("uri", False)) and name.startswith("file:"):
        # SQLAlchemy keeps the URI's parameters in the URL's query, so mode=memory is there.
        if parsed.query.get("mode") == "memory":
            return None
        name = _uri_path(name)
    if name in ("", ":memory:"):  # SQLite's private temporary and in-memory databases
        return None
    return Path(os.path.realpath(name))


def _uri_path(uri: str) -> str:
    # SQLite's own reading (sqlite.org/uri.html): an authority, if any, must be empty or
    # "localhost"; the path ends at "?" or "#"; %XX escapes are decoded.
    path = uri.removeprefix("file:").split("?", 1)[0].split("#", 1)[0]
    if path.startswith("//"):
        path = "/" + path[2:].partition("/")[2]
    return unquote(path)


# Every commit synced: run, lock and held-deletion rows must survive a power cut. The staging
# writer relaxes it to NORMAL on its own connection (etl.pipeline.staging_writes.writer_connection).
SQLITE_SYNCHRONOUS = "FULL"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets readers (etl runs, reports) work while an extract writes. The 60 s busy timeout
    # rides out a concurrent writer.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # 64 MB of page cache keeps the staging index hot when a source has millions of rows.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)
