"""The database's own bulk-write ceiling: the ETL's staged rows written straight through the driver.

No HTTP, no lookups, no checkpoints: the rows the ETL would stage for the replay server's third
parties (the same compact payload text, ids and XXH3 hashes, the columns
``etl.pipeline.staging_writes.insert_new`` writes) go into a freshly migrated ``staged_records``
by the cheapest path each database has, one transaction per ``commit_rows`` rows:

* SQLite: ``executemany`` on the standard ``sqlite3`` driver (the one under aiosqlite) with the
  project's pragmas (WAL, 64 MB cache: ``etl.db.engine``) and ``synchronous=NORMAL``, the
  durability the ETL's staging writer sets on its own connection (``staging_writes.writer_connection``);
* PostgreSQL: asyncpg's ``copy_records_to_table`` (COPY) with ``synchronous_commit=off`` on
  the connection, as the ETL's staging transactions set it.

Each transaction's rows are built before its clock starts, so only the writes are timed, and
memory holds one transaction's rows, not the whole table.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import make_url

from bench.replay_records import Catalog, Layout
from bench.replay_resources import THIRDPARTIES
from etl.db.engine import _sqlite_pragmas, sqlite_file
from etl.db.staging import StagedRecord
from etl.payload import content_hash

# As etl/pipeline/staging_writes.py insert_new writes a new row (its _COPY_COLUMNS).
COLUMNS = ("source", "entity", "source_id", "payload", "content_hash", "first_seen_run", "last_seen_run",
           "extracted_at", "seen_scan", "deleted_at")  # fmt: skip
SOURCE, ENTITY = "miclinik", "customer"


def staged_rows(catalog: Catalog, count: int, batch: int, run_id: str) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ids 1..count, ``batch`` at a time, as the ETL stages them (compact text, its hash)."""
    now = datetime.now(UTC)
    for first in range(0, count, batch):
        rows = []
        for position in range(first, min(count, first + batch)):
            payload = catalog.record(position)
            rows.append((SOURCE, ENTITY, str(catalog.ids[position]), payload.decode(), content_hash(payload),
                         run_id, run_id, now, run_id, None))  # fmt: skip
        yield rows


def write_sqlite(url: str, rows: Iterator[list[tuple[Any, ...]]]) -> tuple[int, float]:
    """Rows written and seconds spent writing them, one explicit transaction per batch."""
    path = sqlite_file(url)
    if path is None:
        raise ValueError(f"not a SQLite file: {url}")
    connection = sqlite3.connect(path, isolation_level=None)  # transactions begun and committed here
    _sqlite_pragmas(connection, None)  # the project's own: what the ETL's connections run with
    connection.execute("PRAGMA synchronous = NORMAL")  # as the staging writer relaxes its connection
    # The conversion the ETL applies (staging_writes._sqlite_converter: the column type's own, if any).
    to_text = StagedRecord.__table__.c["extracted_at"].type.bind_processor(_sqlite_dialect()) or (lambda v: v)
    insert = f"INSERT INTO staged_records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    written, seconds = 0, 0.0
    try:
        for batch in rows:
            batch = [(*row[:7], to_text(row[7]), *row[8:]) for row in batch]
            started = time.perf_counter()
            connection.execute("BEGIN")
            connection.executemany(insert, batch)
            connection.execute("COMMIT")
            seconds += time.perf_counter() - started
            written += len(batch)
    finally:
        connection.close()
    return written, seconds


def _sqlite_dialect() -> Any:
    from sqlalchemy.dialects.sqlite import aiosqlite

    return aiosqlite.dialect()


async def write_postgresql(url: str, rows: Iterator[list[tuple[Any, ...]]]) -> tuple[int, float]:
    """Rows written and seconds spent writing them: COPY, one transaction per batch."""
    import asyncpg

    parsed = make_url(url)
    connection = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                       password=parsed.password, database=parsed.database)  # fmt: skip
    written, seconds = 0, 0.0
    try:
        await connection.execute("SET synchronous_commit = off")
        for batch in rows:
            started = time.perf_counter()
            async with connection.transaction():
                await connection.copy_records_to_table("staged_records", records=batch, columns=list(COLUMNS))
            seconds += time.perf_counter() - started
            written += len(batch)
    finally:
        await connection.close()
    return written, seconds


async def write_ceiling(url: str, records: int, commit_rows: int) -> dict[str, Any]:
    """Write ``records`` staged rows into the database at ``url``; rows/s of the writes alone."""
    catalog = Catalog(THIRDPARTIES, records, Layout("compact"))
    rows = staged_rows(catalog, records, commit_rows, str(uuid.uuid4()))
    if make_url(url).get_backend_name() == "sqlite":
        written, seconds = write_sqlite(url, rows)
    else:
        written, seconds = await write_postgresql(url, rows)
    return {"records": written, "seconds": seconds, "rate": written / seconds if seconds else 0.0}
