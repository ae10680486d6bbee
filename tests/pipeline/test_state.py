"""The typed scan state: named steps, one watermark notion, and JSON round trips (old shape included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from etl.pipeline.state import Scan, StreamState


def start(since):
    return {"after": 0, "since": (since or {}).get("tms")}


def test_begin_advance_finish_keeps_the_first_pages_watermark() -> None:
    """A scan's next watermark is what its first staged page said; finishing makes it the stream's."""
    state = StreamState()
    scan = state.begin(run_id="r1", full=False, incremental=True, start=start)
    assert scan.mode == "full" and scan.cursors == [{"after": 0, "since": None}]
    scan.advance(0, {"after": 10, "since": None}, {"tms": "t1"})
    scan.advance(0, {"after": 20, "since": None}, {"tms": "t2"})
    assert not scan.finished and scan.next_watermark == {"tms": "t1"}
    scan.advance(0, None, {"tms": "t3"})
    assert scan.finished
    state.finish()
    assert state.scan is None and state.watermark == {"tms": "t1"} and state.last_scan_mode == "full"
    following = state.begin(run_id="r2", full=False, incremental=True, start=start)
    assert following.mode == "incremental" and following.cursors == [{"after": 0, "since": "t1"}]


def test_a_scan_in_progress_is_resumed_unless_a_full_scan_replaces_an_incremental_one() -> None:
    """A later run joins the scan in progress; --full replaces an incremental scan but resumes a full one."""
    state = StreamState(watermark={"tms": "t0"})
    scan = state.begin(run_id="r1", full=False, incremental=True, start=start)
    scan.advance(0, {"after": 5, "since": "t0"})
    assert state.begin(run_id="r2", full=False, incremental=True, start=start) is scan and scan.runs == ["r1", "r2"]
    replaced = state.begin(run_id="r3", full=True, incremental=True, start=start)
    assert replaced is not scan and replaced.mode == "full" and replaced.cursors == [{"after": 0, "since": None}]
    assert state.begin(run_id="r4", full=True, incremental=True, start=start) is replaced


def test_rows_of_the_single_cursor_shape_are_read() -> None:
    """State saved before scans had partitions (one ``cursor``) reads as a one-cursor scan."""
    old = {"watermark": None, "scan": {"id": "r1", "runs": ["r1"], "mode": "full", "cursor": {"after": 7}}}
    scan = StreamState.from_json(old).scan
    assert scan is not None and scan.cursors == [{"after": 7}] and scan.runs == ["r1"]


def test_a_sweep_is_a_full_scan_when_the_last_full_one_is_older_than_the_interval() -> None:
    """An incremental stream with a 7-day sweep scans fully once the last complete full scan is 7 days old,
    incrementally before that; without an interval it never sweeps."""
    now = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    week = timedelta(days=7)
    state = StreamState(watermark={"tms": "t0"}, last_full_at=(now - timedelta(days=6, hours=23)).isoformat())
    assert state.begin(run_id="r1", full=False, incremental=True, start=start, sweep_every=week, now=now).mode == (
        "incremental"
    )
    state.scan = None
    state.last_full_at = (now - week).isoformat()
    swept = state.begin(run_id="r2", full=False, incremental=True, start=start, sweep_every=week, now=now)
    assert swept.mode == "full" and swept.sweep and swept.cursors == [{"after": 0, "since": None}]
    swept.advance(0, None)
    state.finish()
    assert state.last_full_at is not None and not state.sweep_due(week)
    state.last_full_at = None
    assert state.begin(run_id="r3", full=False, incremental=True, start=start, now=now).mode == "incremental"


def test_a_restarted_pass_forgets_the_evidence_of_the_pass_before() -> None:
    """Re-reading after a shift starts a new pass: its own mark, cursor and counts; the first pass's are gone."""
    scan = StreamState().begin(run_id="r1", full=True, incremental=False, start=start)
    assert scan.pass_id == "r1" and scan.markers == ["r1"]
    scan.note(received=100, total=250, doubt="no p_elems")
    scan.advance(0, {"after": 100})
    scan.restart("pass-2", {"after": 0})
    assert (scan.pass_id, scan.markers, scan.passes, scan.cursors) == ("pass-2", ["pass-2"], 2, [{"after": 0}])
    assert (scan.received, scan.total, scan.doubts) == (0, None, [])
    assert Scan.from_json(scan.to_json()) == scan


def test_a_confirming_pass_keeps_the_marks_of_the_pass_it_confirms() -> None:
    """A second pass confirming an offset-paged pass's deletions counts rows seen by either as seen."""
    scan = StreamState().begin(run_id="r1", full=True, incremental=False, start=start)
    scan.restart("pass-2", {"after": 0}, confirm=True)
    assert (scan.markers, scan.confirming, scan.passes) == (["r1", "pass-2"], True, 2)
    scan.restart("pass-3", {"after": 0})
    assert (scan.markers, scan.confirming) == (["pass-3"], False)


def test_a_scan_saved_before_passes_counts_its_runs_as_its_marks() -> None:
    """A scan in progress written by the previous version deletes by its runs, as it did then."""
    old = {"scan": {"id": "r1", "runs": ["r1", "r2"], "mode": "full", "cursors": [{"after": 7}]}}
    scan = StreamState.from_json(old).scan
    assert scan is not None and scan.pass_id == "r1" and scan.markers == ["r1", "r2"]


cursors = st.one_of(st.none(), st.dictionaries(st.sampled_from(["after", "p_num", "resumekey"]), st.integers()))


@given(
    watermark=cursors,
    scan=st.one_of(
        st.none(),
        st.builds(
            Scan,
            id=st.text(min_size=1, max_size=8),
            mode=st.sampled_from(["full", "incremental"]),
            cursors=st.lists(cursors, min_size=1, max_size=3),
            runs=st.lists(st.text(min_size=1, max_size=8), max_size=3),
            next_watermark=cursors,
            started_at=st.text(max_size=10),
            sweep=st.booleans(),
            passes=st.integers(1, 5),
            received=st.integers(0, 10**6),
            total=st.one_of(st.none(), st.integers(0, 10**6)),
            doubts=st.lists(st.text(max_size=20), max_size=3),
            confirming=st.booleans(),
        ),
    ),
)
def test_json_round_trip(watermark, scan) -> None:
    """Any state survives serialisation to the JSON column unchanged."""
    if scan is not None and not scan.runs:
        scan.runs = [scan.id]
    state = StreamState(watermark=watermark, scan=scan)
    assert StreamState.from_json(state.to_json()) == state
