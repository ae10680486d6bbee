"""The engine's own checks on a page, as pure functions: ids a column can hold, storable cursors, scan bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etl.payload import SOURCE_ID_LENGTH, id_problem
from etl.pipeline.bounds import ScanBound, ScanOutOfBounds
from etl.pipeline.pages import SHOWN_ID_LENGTH, shown_id, storable_json


@given(st.text(max_size=300))
def test_an_id_is_refused_exactly_when_a_staging_column_could_not_hold_it(source_id: str) -> None:
    """Any text: refused with a reason exactly when it is too long, holds a NUL or is not encodable."""
    try:
        encodable = bool(source_id.encode("utf-8")) or True
    except UnicodeEncodeError:
        encodable = False
    storable = len(source_id) <= SOURCE_ID_LENGTH and "\x00" not in source_id and encodable
    assert (id_problem(source_id) is None) == storable


@given(st.text(max_size=500))
def test_a_refused_id_is_shown_as_short_plain_text(source_id: str) -> None:
    """The shown form of any id fits the rejected_records column, holds no NUL and encodes as UTF-8."""
    shown = shown_id(source_id)
    assert len(shown) <= SHOWN_ID_LENGTH + 3 <= SOURCE_ID_LENGTH
    assert "\x00" not in shown and id_problem(shown) is None


INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what the JSON serializer writes


@given(st.recursive(st.none() | INT64 | st.text(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))
def test_a_value_is_storable_exactly_when_it_holds_no_nul_and_encodes(value: object) -> None:
    """``storable_json`` agrees with what a jsonb column takes: JSON text without NUL or lone surrogates."""
    text = "".join(_strings(value))
    try:
        text.encode("utf-8")
        encodable = True
    except UnicodeEncodeError:
        encodable = False
    if "\x00" in text or not encodable:
        assert not storable_json(value)
    else:
        assert storable_json(value)
    assert not storable_json({"after": 2**70})


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (key, *_strings(item))]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def test_a_stream_with_nothing_known_has_no_record_bound() -> None:
    """A first scan of an empty stream without a stated total is bounded by the stall timeout alone."""
    bound = ScanBound(factor=3, slack=10_000, page_size=100)
    assert bound.records_limit(live=0, total=None) is None
    bound.check(received=5_000_000, pages=50_000, live=0, total=None)


@pytest.mark.parametrize(
    ("live", "total", "limit"), [(1_000, None, 13_000), (1_000, 5_000, 25_000), (0, 0, 10_000), (0, 40, 10_120)]
)
def test_the_record_bound_is_factor_times_the_larger_known_count_plus_slack(
    live: int, total: int | None, limit: int
) -> None:
    """3 x max(live rows, stated total) + 10,000, reached but not passed."""
    bound = ScanBound(factor=3, slack=10_000, page_size=100)
    assert bound.records_limit(live=live, total=total) == limit
    bound.check(received=limit, pages=1, live=live, total=total)
    with pytest.raises(ScanOutOfBounds, match="scan_bound_slack"):
        bound.check(received=limit + 1, pages=1, live=live, total=total)


def test_pages_are_bounded_for_a_server_that_moves_on_with_empty_pages() -> None:
    """Pages past ten times those the record bound needs (a page cap of a tenth) plus 100 stop the pass."""
    bound = ScanBound(factor=3, slack=10_000, page_size=100)
    pages = bound.pages_limit(13_000)
    assert pages == 130 * 10 + 100
    bound.check(received=0, pages=pages, live=1_000, total=None)
    with pytest.raises(ScanOutOfBounds, match="pages"):
        bound.check(received=0, pages=pages + 1, live=1_000, total=None)
