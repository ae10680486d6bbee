"""Staging schema: runs, per-stream state, staged raw records, rejected records, held deletions,
and who holds the run lock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from etl.db.base import Base
from etl.db.types import BigId, JsonDocument, VerbatimJson
from etl.payload import SOURCE_ID_LENGTH


class SyncRun(Base):
    """One execution of a job (extract, sync, import), with its per-stream counts."""

    __tablename__ = "sync_runs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(32), default="manual")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="running")
    counts: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_sync_runs_started_at", "started_at"),)


class StreamState(Base):
    """Where a stream of a source stands: its cursor or watermark, committed with each batch."""

    __tablename__ = "stream_states"
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StagedRecord(Base):
    """The latest raw payload of one source record, whole, with its content hash."""

    __tablename__ = "staged_records"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(SOURCE_ID_LENGTH))
    payload: Mapped[Any] = mapped_column(VerbatimJson)
    content_hash: Mapped[str] = mapped_column(String(64))
    first_seen_run: Mapped[str] = mapped_column(String(36))
    last_seen_run: Mapped[str] = mapped_column(String(36))
    # The scan pass that last saw the row (etl.pipeline.state): deletions compare against it.
    seen_scan: Mapped[str | None] = mapped_column(String(36))
    # The run that last received this record in a form staging refused (see rejected_records):
    # the payload here is the last good one, older than the server's. A good answer clears it.
    rejected_run: Mapped[str | None] = mapped_column(String(36))
    extracted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Every page looks its ids up in this index. source_id leads so the lookup is always an index
    # condition: with (source, entity) first, PostgreSQL on a freshly loaded table (no statistics
    # yet) scans a whole source and filters it, for every page.
    __table_args__ = (UniqueConstraint("source_id", "entity", "source"),)


class RejectedRecord(Base):
    """A record that could not be staged, kept with the reason and whatever payload arrived."""

    __tablename__ = "rejected_records"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36))
    source: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str | None] = mapped_column(String(SOURCE_ID_LENGTH))
    payload: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    rejected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_rejected_records_run", "run_id"),)


class HeldDeletion(Base):
    """Deletions a complete full scan would have marked, held for an operator: why, and how many.

    ``status``: ``pending`` until ``etl deletions accept`` applies it (``accepted``) or a later
    full scan of the stream decides afresh (``superseded``)."""

    __tablename__ = "held_deletions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    stream: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(String(36))
    held_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text)
    live_before: Mapped[int] = mapped_column(Integer)
    would_delete: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    applied: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_held_deletions_stream", "source", "stream", "status"),)


class HeldDeletionRow(Base):
    """One staged row of a held set, with the pass mark it had when held (a row seen since is spared)."""

    __tablename__ = "held_deletion_rows"
    hold_id: Mapped[int] = mapped_column(BigId, ForeignKey("held_deletions.id", ondelete="CASCADE"), primary_key=True)
    staged_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seen_scan: Mapped[str | None] = mapped_column(String(36))


class RunLockHolder(Base):
    """Who holds the run lock (etl.db.runlock), written by the holder once it has the lock.

    For display only: the lock itself is a PostgreSQL advisory lock or a file lock, never this
    row. At most one row; a holder that died leaves its row until the next holder replaces it."""

    __tablename__ = "run_lock_holders"
    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
