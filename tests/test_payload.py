"""Raw JSON records: a list page split into the server's own bytes, ids read without decoding."""

from __future__ import annotations

import json
import re

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from etl import payload
from etl.payload import CompactRawJson, NotAnArray, RawJson, UncheckedRawJson, fingerprint, peek, split_array

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
layouts = st.sampled_from(
    [
        {"separators": (",", ":")},
        {"separators": (", ", ": ")},
        {"indent": 2},
        {"separators": (",", ":"), "ensure_ascii": False},
    ]
)


@given(st.lists(json_values, max_size=8), layouts)
def test_elements_are_the_compacted_bytes_of_each_value(values: list, layout: dict) -> None:
    """Every element comes back as the bytes the array held, compacted (the page in one pass), decodes to the
    value, and has the fingerprint a record cut as sent and compacted alone has (no hash changes with it)."""
    body = json.dumps(values, **layout).encode()
    elements = split_array(body)
    assert [json.loads(element) for element in elements] == values
    as_sent = [json.dumps(value, **layout).encode() for value in values]
    assert elements == [msgspec.json.format(value, indent=-1) for value in as_sent]
    assert all(type(element) is CompactRawJson for element in elements)
    assert [_stored(e) for e in elements] == [_stored(RawJson(value)) for value in as_sent]


def _stored(record: RawJson) -> object:
    """What staging keeps of a record: its text and hash, or why it is refused."""
    try:
        return fingerprint(record)
    except ValueError as exc:
        return str(exc)


@given(st.lists(st.dictionaries(st.text(max_size=6), json_values, max_size=4), min_size=1, max_size=6), st.data())
def test_one_unpaired_surrogate_leaves_its_neighbours_byte_identical(records: list[dict], data: st.DataObject) -> None:
    """A record a strict decoder refuses does not change how the others are cut (same bytes,
    hence the same hashes as on a clean run); only the bad one comes back unchecked."""
    clean = json.dumps(records, separators=(",", ":")).encode()
    bad_at = data.draw(st.integers(0, len(records) - 1))
    poisoned = [*records]
    poisoned[bad_at] = {"id": "x", "name": "\ud800"}  # json.dumps writes it as the escape \ud800
    body = json.dumps(poisoned, separators=(",", ":")).encode()
    elements, clean_elements = split_array(body), split_array(clean)
    assert len(elements) == len(records)
    for index, element in enumerate(elements):
        if index == bad_at:
            assert isinstance(element, UncheckedRawJson) and b"\\ud800" in element
        else:
            assert element == clean_elements[index]


@pytest.mark.parametrize("body", [b"[]", b"  [ ]  ", b"[\n]"])
def test_empty_arrays_have_no_elements(body: bytes) -> None:
    assert split_array(body) == []


@pytest.mark.parametrize("body", [b'{"error": {"code": 404}}', b'{"data": [], "pagination": {}}', b'"text"'])
def test_other_json_values_are_not_arrays(body: bytes) -> None:
    with pytest.raises(NotAnArray):
        split_array(body)


@pytest.mark.parametrize(
    "body",
    [
        b'[{"id": "1"}, {"id": "2"',  # cut short by a dropped connection
        b"<html><body>502 Bad Gateway</body></html>",
        b'[{"id": "1"},, {"id": "2"}]',
        b'[{"id": "1", "n": "\\ud800"}] trailing',
    ],
)
def test_broken_bodies_raise_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        split_array(body)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"id":"17","name":"x"}', "17"),
        (b'{"name":{"id":"nested"},"id":42}', 42),
        (b'{"name":"no id"}', None),
        (b'{"id":null}', None),
        (b'{"id":"1","n":"\\ud800"}', "1"),  # a strict decoder refuses the record; the id is still read
    ],
)
def test_peek_reads_one_top_level_key(raw: bytes, expected: object) -> None:
    assert peek(RawJson(raw), "id") == expected


@pytest.mark.parametrize(("raw", "type_name"), [(b'"a string"', "str"), (b"null", "NoneType"), (b"[1, 2]", "list")])
def test_peek_names_the_type_of_a_record_that_is_not_an_object(raw: bytes, type_name: str) -> None:
    with pytest.raises(TypeError, match=f"^{type_name}$"):
        peek(RawJson(raw), "id")


def test_peek_refuses_a_malformed_slice() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        peek(UncheckedRawJson(b'{"id": "1", oops}'), "id")


def _escape_by_regex(data: bytes, pattern: bytes) -> bool:
    """The reference: a match not preceded by an odd run of backslashes is an escape."""
    for match in re.finditer(pattern, data):
        run = len(data[: match.start()]) - len(data[: match.start()].rstrip(b"\\"))
        if run % 2 == 0:
            return True
    return False


@given(st.text(alphabet='\\u0dD8acFx"', max_size=40))
def test_escape_scans_match_the_json_reading_of_backslashes(text: str) -> None:
    """NUL and surrogate escapes are found exactly where an even run of backslashes precedes them."""
    data = text.encode()
    assert payload._has_nul_escape(data) == _escape_by_regex(data, rb"\\u0000")
    assert payload._has_surrogate_escape(data) == _escape_by_regex(data, rb"\\u[dD][89a-fA-F]")


@given(st.text(alphabet='\\u0dx"', max_size=40))
def test_the_escape_prefilter_never_misses_an_escape(text: str) -> None:
    """Wherever a real ``\\u`` escape is, the memchr prefilter says one may be."""
    data = text.encode()
    if _escape_by_regex(data, rb"\\u"):
        assert payload._may_hold_u_escape(data)
