"""Checkpoints and the staging writer's connection: a stream's state read and written with its pages.

The state is upserted with every staging transaction, straight through the driver; the writer's
connection carries the relaxed durability staging can afford, and only it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from etl.db.engine import SQLITE_SYNCHRONOUS
from etl.db.staging import StreamState as StreamStateRow
from etl.pipeline.staging_writes import sqlite_converter
from etl.pipeline.state import StreamState


@contextlib.asynccontextmanager
async def writer_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A staging writer's own connection, with relaxed durability on it alone (run, lock and
    held-deletion rows written on any other connection keep the database's full durability).

    PostgreSQL: ``synchronous_commit`` off, so a commit is acknowledged before its WAL reaches
    disk. Safe for staging: a batch of pages and its checkpoint are one transaction, so a server
    crash can only lose the last few batches *together with* their checkpoints, and the next run
    fetches them again. ``plan_cache_mode`` custom: asyncpg prepares each statement once per
    connection, and after five runs PostgreSQL may keep a generic plan made while
    ``staged_records`` was still empty and never analysed (a first load outruns autovacuum): a
    sequential scan, for every page, of a table that grows with each one (measured: 810 records/s).
    SQLite: ``synchronous=NORMAL`` under WAL (a commit is not synced until a checkpoint; every
    other connection syncs each commit, see :mod:`etl.db.engine`).

    Both are reset before the connection goes back to the pool."""
    async with engine.connect() as connection:
        relaxed, restored = _DURABILITY.get(engine.dialect.name, ((), ()))
        for statement in relaxed:
            await connection.exec_driver_sql(statement)
        await connection.commit()
        try:
            yield connection
        finally:
            with contextlib.suppress(Exception):  # a broken connection is discarded by the pool anyway
                await connection.rollback()
                for statement in restored:
                    await connection.exec_driver_sql(statement)
                await connection.commit()


_DURABILITY = {
    "postgresql": (
        ("SET synchronous_commit = off", "SET plan_cache_mode = force_custom_plan"),
        ("RESET synchronous_commit", "RESET plan_cache_mode"),
    ),
    "sqlite": (("PRAGMA synchronous = NORMAL",), (f"PRAGMA synchronous = {SQLITE_SYNCHRONOUS}",)),
}


async def begin_writes(session: AsyncSession) -> None:
    """Open a staging transaction for writing. SQLite: ``BEGIN IMMEDIATE``, taking the write lock before
    the first read (a transaction that reads, then writes, after another writer committed fails at
    once instead of waiting), and so that a savepoint is never the outermost statement, which
    SQLite would commit on its own at ``RELEASE``. Other databases: nothing to do."""
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        await connection.exec_driver_sql("BEGIN IMMEDIATE")


async def load_state(session: AsyncSession, source: str, stream: str) -> StreamState:
    """The stream's state, or a fresh one."""
    row = await session.get(StreamStateRow, (source, stream))
    return StreamState.from_json(row.state if row else None)


async def save_state(session: AsyncSession, source: str, stream: str, state: StreamState) -> None:
    """Upsert the stream's state: one statement, no read first, straight to the driver (it runs
    with every staging transaction, and the ORM's work on it was most of a page's fixed cost)."""
    connection = await session.connection()
    dialect = connection.dialect
    state_text = orjson.dumps(state.to_json()).decode()
    now = datetime.now(UTC)
    if dialect.name == "postgresql":
        await connection.exec_driver_sql(_PG_SAVE_STATE, (source, stream, state_text, now))
        return
    if dialect.name == "sqlite":
        stamp = sqlite_converter("updated_at", dialect, StreamStateRow.__table__)
        await connection.exec_driver_sql(_SQLITE_SAVE_STATE, (source, stream, state_text, stamp(now)))
        return
    values = {"source": source, "stream": stream, "state": state.to_json(), "updated_at": now}
    row = await session.get(StreamStateRow, (source, stream))
    if row is None:
        session.add(StreamStateRow(**values))
    else:
        row.state, row.updated_at = values["state"], now
    await session.flush()


_UPSERT_STATE = (
    "INSERT INTO stream_states (source, stream, state, updated_at) VALUES ({0}, {1}, {2}, {3}) "
    "ON CONFLICT (source, stream) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at"
)
_PG_SAVE_STATE = _UPSERT_STATE.format("$1", "$2", "$3", "$4")
_SQLITE_SAVE_STATE = _UPSERT_STATE.format("?", "?", "?", "?")
