"""The pure decision on a full scan's deletions: evidence first, then plausibility."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from etl.pipeline.deletions import DeletionGuard, ScanEvidence, judge

GUARD = DeletionGuard(max_fraction=0.2, min_rows=50)


@given(live=st.integers(0, 10_000), missing=st.integers(0, 10_000), doubts=st.lists(st.text(min_size=1), max_size=2),
       total=st.one_of(st.none(), st.integers(0, 20_000)), received=st.integers(0, 20_000))  # fmt: skip
def test_a_hold_names_every_failed_check_and_nothing_is_held_without_deletions(
    live, missing, doubts, total, received
) -> None:
    """Holding needs something to delete; when held, each doubt and the counts are in the reason."""
    missing = min(missing, live)
    verdict = judge(ScanEvidence(tuple(doubts), total, received), live=live, missing=missing, guard=GUARD)
    if missing == 0:
        assert not verdict.hold
        return
    short = total is not None and received < total
    implausible = missing == live or (live > 50 and missing > 0.2 * live)
    assert verdict.hold == bool(doubts or short or implausible)
    if verdict.hold:
        assert all(doubt in verdict.reason for doubt in doubts)
        assert f"{missing} of {live} live rows would be marked deleted ({live} -> {live - missing})" in verdict.reason


def test_each_check_is_named() -> None:
    """The page-cap, empty-stream and fraction checks each say what failed."""
    capped = judge(ScanEvidence(total=1000, received=900), live=1000, missing=100, guard=GUARD)
    assert capped.hold and "the server counted 1000 rows but the scan received 900" in capped.reason
    emptied = judge(ScanEvidence(), live=12, missing=12, guard=GUARD)
    assert emptied.hold and "it would leave the stream empty (all 12 live rows unseen)" in emptied.reason
    many = judge(ScanEvidence(), live=100, missing=21, guard=GUARD)
    assert many.hold and "21% of the stream's live rows is above max_delete_fraction 0.2" in many.reason
    assert not judge(ScanEvidence(), live=100, missing=20, guard=GUARD).hold
    assert not judge(ScanEvidence(), live=50, missing=40, guard=GUARD).hold
