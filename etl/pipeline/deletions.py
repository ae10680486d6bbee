"""Whether a complete full scan may mark its unseen rows deleted: evidence first, then plausibility.

Pure: the engine counts, this decides. A scan that read every page without an error is not
proof that missing rows are gone (protocols.md §1.9, §4.5: a key lacking one right, a session
landing on a logon form or a silently capped page all read as a shorter list). So deletions are
marked only when

1. **the protocol's evidence agrees**: no page raised a doubt (a failed check named by its
   stream, :class:`etl.sources.base.Evidence`), and where the server stated the list's size,
   the pass received at least that many rows; and
2. **the result is plausible** (the guard): it would not leave a stream empty that staging
   holds rows of, nor mark more than ``max_delete_fraction`` of a stream's live rows when the
   stream has more than ``min_rows_for_fraction`` of them.

Otherwise nothing is deleted and the set is held for ``etl deletions accept``; the reason names
the check that failed and the counts before and after.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeletionGuard:
    """The plausibility limits (settings ``max_delete_fraction``, ``min_rows_for_fraction``)."""

    max_fraction: float = 0.2
    min_rows: int = 50


@dataclass(frozen=True)
class ScanEvidence:
    """What the pass's pages said of completeness: failed checks, the server's total, rows answered."""

    doubts: tuple[str, ...] = ()
    total: int | None = None
    received: int = 0


@dataclass(frozen=True)
class Judgement:
    """``hold`` with its reason (the failed checks, then the counts), or go ahead."""

    hold: bool
    reason: str | None = None
    checks: tuple[str, ...] = ()


def judge(evidence: ScanEvidence, *, live: int, missing: int, guard: DeletionGuard) -> Judgement:
    """Decide on marking ``missing`` of ``live`` staged rows deleted after a complete full scan."""
    if missing <= 0:
        return Judgement(hold=False)
    failed = [*evidence.doubts]
    if evidence.total is not None and evidence.received < evidence.total:
        failed.append(
            f"the server counted {evidence.total} rows but the scan received {evidence.received}: "
            "pages were cut short (a page-size cap?)"
        )
    if missing >= live:
        failed.append(f"it would leave the stream empty (all {live} live rows unseen)")
    elif live > guard.min_rows and missing > guard.max_fraction * live:
        failed.append(
            f"{missing / live:.0%} of the stream's live rows is above max_delete_fraction {guard.max_fraction:g}"
        )
    if not failed:
        return Judgement(hold=False)
    counts = f"{missing} of {live} live rows would be marked deleted ({live} -> {live - missing})"
    return Judgement(hold=True, reason=f"deletions held: {'; '.join(failed)}; {counts}", checks=tuple(failed))
