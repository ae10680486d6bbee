"""The async engine: one per process and URL, with SQLite tuned for a single writer."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from etl.db.types import json_text


def create_engine(url: str, **kwargs: object) -> AsyncEngine:
    """An async engine; for SQLite the parent folder is created and WAL mode switched on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 60}, json_serializer=json_text, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # asyncpg's executemany streams many rows through one prepared statement; SQLAlchemy's
    # "insertmanyvalues" would prepare a fresh statement with thousands of parameters per page.
    return create_async_engine(url, pool_pre_ping=True, use_insertmanyvalues=False, json_serializer=json_text, **kwargs)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets readers (etl runs, reports) work while an extract writes; NORMAL sync is
    # crash-safe under WAL. The 60 s busy timeout rides out a concurrent writer.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # 64 MB of page cache keeps the staging index hot when a source has millions of rows.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)
