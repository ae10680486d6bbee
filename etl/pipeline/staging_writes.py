"""Staging writes: upsert a page of raw records by content hash, reject what cannot be stored.

Every function here takes an open session and leaves the commit to the caller, so a
page's rows and its stream checkpoint land in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from sqlalchemy import BigInteger, String, and_, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from etl.db.staging import RejectedRecord, StagedRecord
from etl.pipeline.pages import Rejection
from etl.pipeline.results import StageCounts

__all__ = ["Rejection", "reject_records", "stage_records"]
# A rejected payload is evidence for an operator, not data: past this it is kept cut, its length said.
REJECTED_PAYLOAD_CHARS = 64 * 1024


async def stage_records(
    session: AsyncSession,
    *,
    source: str,
    entity: str,
    run_id: str,
    records: list[tuple[str, Any, str]],
    scan_mark: str | None = None,
    tombstones: frozenset[str] = frozenset(),
    assume_new: bool = False,
) -> StageCounts | None:
    """Upsert ``(source_id, payload, hash)`` rows (one page or several); the last copy of an id wins,
    and every earlier copy counts as a row received again (``repeated``).

    Every row gets ``scan_mark`` (the pass that saw it, default the run). Ids in ``tombstones``
    are the server's own deletion flags: staged with their payload and marked deleted.

    ``assume_new`` (a scan that began with no staged row of its entity, under the run lock): the rows
    are inserted without looking them up first, in a savepoint; None when one of them was staged
    after all (a server repeating rows), the savepoint rolled back: the caller stages them again
    without the assumption."""
    counts = StageCounts()
    latest = {source_id: (payload, digest) for source_id, payload, digest in records}
    if not latest:
        return counts
    mark = scan_mark or run_id
    now = datetime.now(UTC)
    if assume_new:
        return await _insert_all_new(session, source, entity, run_id, mark, now, latest, tombstones, len(records))
    existing = await _staged_rows(session, source, entity, list(latest))
    new_rows, changed_rows, unchanged_ids = [], [], []
    for source_id, (payload, digest) in latest.items():
        row = existing.get(source_id)
        gone = source_id in tombstones
        if row is None:
            # The COPY / executemany row, in _COPY_COLUMNS order: built once, never as a dict.
            new_rows.append((source, entity, source_id, payload, digest, run_id, run_id, now, mark,
                             now if gone else None))  # fmt: skip
            continue
        counts.repeated += row.seen_scan == mark
        if row.content_hash != digest or (row.deleted_at is None) == gone:
            changed_rows.append(
                {"id": row.id, "payload": payload, "content_hash": digest, "last_seen_run": run_id,
                 "extracted_at": now, "seen_scan": mark, "deleted_at": (row.deleted_at or now) if gone else None,
                 "rejected_run": None}
            )  # fmt: skip
            if gone and row.deleted_at is None:
                counts.deleted += 1
            else:
                counts.changed += 1
        else:
            unchanged_ids.append(row.id)
    if new_rows:
        await insert_new(session, new_rows)
    if changed_rows:
        await session.execute(update(StagedRecord), changed_rows)
    if unchanged_ids:
        await _mark_unchanged(session, unchanged_ids, run_id, mark)
    counts.new, counts.unchanged = len(new_rows), len(unchanged_ids)
    counts.repeated += len(records) - len(latest)
    counts.records = len(records)
    return counts


async def _insert_all_new(
    session: AsyncSession, source: str, entity: str, run_id: str, mark: str, now: datetime,
    latest: dict[str, tuple[Any, str]], tombstones: frozenset[str], received: int,
) -> StageCounts | None:  # fmt: skip
    rows = [(source, entity, source_id, payload, digest, run_id, run_id, now, mark, now if source_id in tombstones
             else None) for source_id, (payload, digest) in latest.items()]  # fmt: skip
    try:
        async with session.begin_nested():
            await insert_new(session, rows)
    except Exception as exc:
        if not _unique_violation(exc):
            raise
        return None
    return StageCounts(records=received, new=len(rows), repeated=received - len(rows))


def _unique_violation(exc: BaseException) -> bool:
    """A duplicate key, from SQLAlchemy (SQLite's executemany) or from asyncpg's COPY directly."""
    if isinstance(exc, IntegrityError):
        return True
    return type(exc).__name__ == "UniqueViolationError"


async def _mark_unchanged(session: AsyncSession, row_ids: list[int], run_id: str, mark: str) -> None:
    """Rows seen again as they were: one statement, the ids in one parameter on SQLite (a JSON array),
    so nothing is compiled anew for each count of ids and the GIL is freed once for all of them."""
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        await connection.exec_driver_sql(
            "UPDATE staged_records SET last_seen_run = ?, seen_scan = ?, rejected_run = NULL "
            "WHERE id IN (SELECT value FROM json_each(?))",
            (run_id, mark, orjson.dumps(row_ids).decode()),
        )
        return
    await session.execute(
        update(StagedRecord)
        .where(one_of(session, StagedRecord.id, row_ids))
        .values(last_seen_run=run_id, seen_scan=mark, rejected_run=None)
    )


LOOKUP_CHUNK = 10_000  # ids per lookup: one parameter each, well within every limit


async def _staged_rows(session: AsyncSession, source: str, entity: str, source_ids: list[str]) -> dict[str, Any]:
    """The staged rows of these ids, by id: what staging compares a page with. One statement text per
    database, the ids in one parameter (a JSON array on SQLite, an array on PostgreSQL), so nothing
    is compiled or planned anew for each page size."""
    connection = await session.connection()
    dialect = connection.dialect.name
    if dialect not in _LOOKUP:
        return await _staged_rows_orm(session, source, entity, source_ids)
    found = {}
    for begin in range(0, len(source_ids), LOOKUP_CHUNK):
        chunk = source_ids[begin : begin + LOOKUP_CHUNK]
        if dialect == "sqlite":  # the driver returns SQLite's text for a timestamp: read as the ORM would
            deleted_at = _sqlite_reader("deleted_at", connection.dialect)
            result = await connection.exec_driver_sql(_LOOKUP[dialect], (source, entity, orjson.dumps(chunk).decode()))
            found.update((row[1], _Staged(row[0], row[1], row[2], deleted_at(row[3]), row[4])) for row in result)
        else:
            result = await connection.exec_driver_sql(_LOOKUP[dialect], (source, entity, chunk))
            found.update((row[1], _Staged(*row)) for row in result)
    return found


class _Staged(NamedTuple):
    id: int
    source_id: str
    content_hash: str
    deleted_at: datetime | None
    seen_scan: str | None


@lru_cache(maxsize=8)
def _sqlite_reader(column: str, dialect: Any) -> Callable[[Any], Any]:
    process = StagedRecord.__table__.c[column].type.result_processor(dialect, None)
    return process or (lambda value: value)


_LOOKUP_COLUMNS = "id, source_id, content_hash, deleted_at, seen_scan"
_LOOKUP = {
    "sqlite": f"SELECT {_LOOKUP_COLUMNS} FROM staged_records WHERE source = ? AND entity = ? "
    "AND source_id IN (SELECT value FROM json_each(?))",
    "postgresql": f"SELECT {_LOOKUP_COLUMNS} FROM staged_records WHERE source = $1 AND entity = $2 "
    "AND source_id = ANY($3::varchar[])",
}


async def _staged_rows_orm(session: AsyncSession, source: str, entity: str, source_ids: list[str]) -> dict[str, Any]:
    found = {}
    for begin in range(0, len(source_ids), LOOKUP_CHUNK):
        rows = await session.execute(
            select(
                StagedRecord.id,
                StagedRecord.source_id,
                StagedRecord.content_hash,
                StagedRecord.deleted_at,
                StagedRecord.seen_scan,
            ).where(StagedRecord.source == source, StagedRecord.entity == entity,
                    StagedRecord.source_id.in_(source_ids[begin : begin + LOOKUP_CHUNK]))
        )  # fmt: skip
        found.update((row.source_id, row) for row in rows)
    return found


_COPY_COLUMNS = ("source", "entity", "source_id", "payload", "content_hash", "first_seen_run", "last_seen_run",
                 "extracted_at", "seen_scan", "deleted_at")  # fmt: skip


async def insert_new(session: AsyncSession, rows: list[tuple[Any, ...]]) -> None:
    """Insert staged rows (tuples in ``_COPY_COLUMNS`` order) by the cheapest bulk path each database has.

    PostgreSQL: COPY, a third faster than a multi-row INSERT for payloads of a few KB.
    SQLite: one ``executemany`` on the driver, with the only columns that need converting (the
    timestamps, shared by every row) converted once. Both run on the session's own connection,
    inside its transaction."""
    dialect = session.bind.dialect
    if dialect.name not in ("postgresql", "sqlite"):
        as_dicts = [dict(zip(_COPY_COLUMNS, row, strict=True)) for row in rows]
        await session.execute(insert(StagedRecord.__table__), as_dicts)
        return
    connection = await session.connection()
    if dialect.name == "sqlite":
        convert = [sqlite_converter(column, dialect) for column in _COPY_COLUMNS]
        stamp, deleted = convert[_COPY_COLUMNS.index("extracted_at")], convert[_COPY_COLUMNS.index("deleted_at")]
        for begin in range(0, len(rows), SQLITE_ROWS_PER_INSERT):
            part = rows[begin : begin + SQLITE_ROWS_PER_INSERT]
            values = [value for row in part for value in (*row[:7], stamp(row[7]), row[8], deleted(row[9]))]
            await connection.exec_driver_sql(_sqlite_insert(len(part)), tuple(values))
        return
    raw = await connection.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(
        StagedRecord.__tablename__, records=rows, columns=list(_COPY_COLUMNS)
    )


# Rows per multi-row INSERT on SQLite (5,000 parameters, within its 32,766). Python's sqlite3 frees
# the GIL only inside each statement's step: with ``executemany`` that is once per row, and the
# writer's thread then waits for the GIL after every row while the event loop parses pages
# (measured with one busy thread beside it: 900 rows/s). One statement per 500 rows does the
# work of 500 rows per release: 72,000 rows/s alone, 39,000 beside a thread that never waits.
SQLITE_ROWS_PER_INSERT = 500


@lru_cache(maxsize=8)
def _sqlite_insert(rows: int) -> str:
    group = "({})".format(", ".join("?" * len(_COPY_COLUMNS)))
    return "INSERT INTO {} ({}) VALUES {}".format(
        StagedRecord.__tablename__, ", ".join(_COPY_COLUMNS), ", ".join([group] * rows)
    )


def sqlite_converter(column: str, dialect: Any, table: Any = StagedRecord.__table__) -> Callable[[Any], Any]:
    """The column type's own bind conversion (datetimes to SQLAlchemy's text form), memoized per value:
    every row of a page shares its timestamp and run id."""
    process = table.c[column].type.bind_processor(dialect)
    if process is None or column == "payload":  # payloads arrive as JSON text already
        return lambda value: value
    return lru_cache(maxsize=4)(process)


def one_of(session: AsyncSession, column: Any, values: list[Any]) -> Any:
    """``column IN values``; on PostgreSQL ``= ANY(array)``, one parameter and one cached plan
    instead of a statement with hundreds of placeholders prepared anew for each page size."""
    if session.bind.dialect.name == "postgresql":
        element = String() if isinstance(values[0], str) else BigInteger()
        return column == any_(bindparam("values", values, type_=ARRAY(element)))
    return column.in_(values)


async def reject_records(
    session: AsyncSession,
    *,
    source: str,
    entity: str,
    run_id: str,
    rejections: list[Rejection],
    scan_mark: str | None = None,
) -> None:
    """Keep what could not be staged, with its reason. A rejected record whose id is known was seen
    all the same: its staged copy (if any) keeps its payload, gets the pass mark (so a full scan
    does not take a record the server still sends, however malformed, for a deleted one) and is
    flagged with the run (``rejected_run``: its payload is older than the server's)."""
    if not rejections:
        return
    now = datetime.now(UTC)
    known = sorted({r.source_id for r in rejections if r.source_id and r.matches_staged})
    if known:
        await session.execute(
            update(StagedRecord)
            .where(StagedRecord.source == source, StagedRecord.entity == entity,
                   one_of(session, StagedRecord.source_id, known))
            .values(seen_scan=scan_mark or run_id, rejected_run=run_id)
        )  # fmt: skip
    await session.execute(
        insert(RejectedRecord),
        [
            {"run_id": run_id, "source": source, "entity": entity, "source_id": r.source_id,
             "payload": _storable_text(r.payload), "reason": r.reason, "rejected_at": now}
            for r in rejections
        ],
    )  # fmt: skip


def _storable_text(payload: Any) -> str:
    if isinstance(payload, bytes):
        text = payload[: REJECTED_PAYLOAD_CHARS * 4].decode("utf-8", errors="backslashreplace")
    elif isinstance(payload, str):
        text = payload
    else:
        try:
            text = json.dumps(payload, ensure_ascii=True, default=repr)
        except (RecursionError, ValueError):
            text = f"<a {type(payload).__name__} that cannot be written as JSON>"
    # Keep the evidence even when it is not valid text: escape what a text column refuses.
    text = text.encode("utf-8", errors="backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    size = len(payload) if isinstance(payload, bytes | str) else len(text)
    if len(text) > REJECTED_PAYLOAD_CHARS:
        return f"{text[:REJECTED_PAYLOAD_CHARS]}... [cut: {size:,} in all]"
    return text


def pass_mark() -> Any:
    """The pass that last saw a row; rows staged before passes existed (migration 0005) name their run."""
    return func.coalesce(StagedRecord.seen_scan, StagedRecord.last_seen_run)


def unseen(source: str, entity: str, markers: list[str]) -> Any:
    """Live staged rows of ``entity`` that no pass named in ``markers`` saw."""
    return and_(
        StagedRecord.source == source,
        StagedRecord.entity == entity,
        StagedRecord.deleted_at.is_(None),
        pass_mark().not_in(markers),
    )


async def mark_deleted(session: AsyncSession, *, source: str, entity: str, markers: list[str]) -> int:
    """After a complete, proven full scan: rows its pass did not see are gone from the source."""
    result = await session.execute(
        update(StagedRecord).where(unseen(source, entity, markers)).values(deleted_at=datetime.now(UTC))
    )
    return result.rowcount or 0
