"""Deletions at the end of a full scan: applied on proof, otherwise held, listed and accepted by hand.

:func:`settle_deletions` runs in the transaction of the scan's last page: it counts the stream's
live rows and those the scan's pass did not see, asks :func:`etl.pipeline.deletions.judge`,
and either marks them deleted or records the held set (each row with the pass mark it had) in
``held_deletions``. :func:`accept_hold` applies exactly the recorded set minus rows seen since;
:func:`pending_holds` lists what waits. The same functions serve ``etl deletions`` and every job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from etl.db.staging import HeldDeletion, HeldDeletionRow, StagedRecord
from etl.pipeline.deletions import DeletionGuard, ScanEvidence, judge
from etl.pipeline.staging_writes import mark_deleted, pass_mark, unseen
from etl.pipeline.state import Scan

log = structlog.get_logger(__name__)
SAMPLE_PAYLOADS = 3


@dataclass(frozen=True)
class Settlement:
    """What the end of a full scan did: rows marked deleted, or the reason they were held."""

    deleted: int = 0
    held: str | None = None


async def settle_deletions(
    session: AsyncSession, scan: Scan, *, source: str, stream: str, entity: str, run_id: str, guard: DeletionGuard
) -> Settlement:
    """Mark the rows the finished full ``scan`` did not see, or hold them with the reason."""
    live = await count_live(session, source=source, entity=entity)
    missing = await count_unseen(session, source=source, entity=entity, markers=scan.markers)
    evidence = ScanEvidence(doubts=tuple(scan.doubts), total=scan.total, received=scan.received)
    verdict = judge(evidence, live=live, missing=missing, guard=guard)
    await _supersede(session, source, stream)
    if not verdict.hold:
        if scan.doubts:  # nothing to delete, but the scan's reading was not clean: say so
            log.warning("scan not proven complete", checks=scan.doubts)
        return Settlement(deleted=await mark_deleted(session, source=source, entity=entity, markers=scan.markers))
    hold = HeldDeletion(
        source=source, stream=stream, entity=entity, run_id=run_id, held_at=datetime.now(UTC),
        reason=verdict.reason, live_before=live, would_delete=missing, status="pending",
        evidence={"checks": list(verdict.checks), "total": scan.total, "received": scan.received,
                  "passes": scan.passes, "markers": list(scan.markers)},
    )  # fmt: skip
    session.add(hold)
    await session.flush()
    rows = select(literal(hold.id), StagedRecord.id, pass_mark()).where(unseen(source, entity, scan.markers))
    await session.execute(insert(HeldDeletionRow).from_select(["hold_id", "staged_id", "seen_scan"], rows))
    log.warning("deletions held", reason=verdict.reason, would_delete=missing, live=live, hold=hold.id)
    return Settlement(held=verdict.reason)


async def count_live(session: AsyncSession, *, source: str, entity: str) -> int:
    """Staged rows of ``entity`` not marked deleted."""
    return await _count(
        session, StagedRecord.source == source, StagedRecord.entity == entity, StagedRecord.deleted_at.is_(None)
    )


async def any_staged(session: AsyncSession, *, source: str, entity: str) -> bool:
    """Whether ``entity`` has any staged row at all, deleted ones included."""
    query = select(StagedRecord.id).where(StagedRecord.source == source, StagedRecord.entity == entity).limit(1)
    return (await session.execute(query)).first() is not None


async def count_unseen(session: AsyncSession, *, source: str, entity: str, markers: list[str]) -> int:
    """Live rows of ``entity`` no pass in ``markers`` saw: what a full scan would mark deleted."""
    return await _count(session, unseen(source, entity, markers))


async def _count(session: AsyncSession, *conditions: Any) -> int:
    return int((await session.execute(select(func.count()).select_from(StagedRecord).where(*conditions))).scalar_one())


async def _supersede(session: AsyncSession, source: str, stream: str) -> None:
    """A newer complete scan of the stream decides afresh: older pending holds no longer apply (their
    rows go; the hold itself stays, as the record of what was held and why)."""
    pending = (HeldDeletion.source == source, HeldDeletion.stream == stream, HeldDeletion.status == "pending")
    await session.execute(
        delete(HeldDeletionRow).where(HeldDeletionRow.hold_id.in_(select(HeldDeletion.id).where(*pending)))
    )
    await session.execute(
        update(HeldDeletion).where(*pending).values(status="superseded", decided_at=datetime.now(UTC))
    )


@dataclass
class HeldSet:
    """A pending hold as ``etl deletions list`` shows it."""

    hold: HeldDeletion
    ids: list[str] = field(default_factory=list)
    samples: list[tuple[str, Any]] = field(default_factory=list)


async def pending_holds(session: AsyncSession, *, id_limit: int | None = 50) -> list[HeldSet]:
    """Every pending hold, oldest first, with up to ``id_limit`` source ids and a few payloads."""
    holds = (
        await session.execute(select(HeldDeletion).where(HeldDeletion.status == "pending").order_by(HeldDeletion.id))
    ).scalars()
    listed = []
    for hold in holds:
        query = (
            select(StagedRecord.source_id, StagedRecord.payload)
            .join(HeldDeletionRow, HeldDeletionRow.staged_id == StagedRecord.id)
            .where(HeldDeletionRow.hold_id == hold.id)
            .order_by(StagedRecord.source_id)
            .limit(id_limit)
        )
        ids_only = (await session.execute(query.with_only_columns(StagedRecord.source_id))).scalars()
        samples = (await session.execute(query.limit(SAMPLE_PAYLOADS))).all()
        listed.append(HeldSet(hold, list(ids_only), [(row[0], row[1]) for row in samples]))
    return listed


@dataclass(frozen=True)
class Acceptance:
    """What ``accept`` did: rows marked deleted, of those held, and how many were seen since."""

    hold_id: int
    applied: int
    held: int

    @property
    def seen_since(self) -> int:
        return self.held - self.applied


class NothingHeld(LookupError):
    """No pending hold for the stream named."""


async def accept_hold(session: AsyncSession, source: str, stream: str, hold_id: int | None = None) -> Acceptance:
    """Apply the stream's pending hold: exactly its rows, minus rows seen (or deleted) since it was made.

    ``hold_id`` names the hold the operator reviewed; a newer hold of the stream (a later scan held
    again, perhaps for another reason) is then refused rather than applied unseen."""
    hold = (
        await session.execute(
            select(HeldDeletion)
            .where(HeldDeletion.source == source, HeldDeletion.stream == stream, HeldDeletion.status == "pending")
            .order_by(HeldDeletion.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if hold is None:
        raise NothingHeld(f"no deletions are held for {source}.{stream}")
    if hold_id is not None and hold.id != hold_id:
        raise NothingHeld(
            f"hold {hold_id} of {source}.{stream} is no longer pending: a later scan held {hold.would_delete} rows "
            f"as hold {hold.id} ({hold.reason}); review it with etl deletions list"
        )
    untouched = (
        select(HeldDeletionRow.staged_id)
        .where(
            HeldDeletionRow.hold_id == hold.id,
            HeldDeletionRow.staged_id == StagedRecord.id,
            HeldDeletionRow.seen_scan == pass_mark(),  # a row seen since the hold has a newer mark
        )
        .exists()
    )
    result = await session.execute(
        update(StagedRecord)
        .where(StagedRecord.deleted_at.is_(None), untouched)
        .values(deleted_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    applied = result.rowcount or 0
    hold.status, hold.decided_at, hold.applied = "accepted", datetime.now(UTC), applied
    log.info("held deletions accepted", source=source, stream=stream, applied=applied, held=hold.would_delete)
    return Acceptance(hold.id, applied, hold.would_delete)
