"""Staging writes: payloads kept whole, counts by content hash, deletions, unstorable text."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text

from etl.db.engine import session_factory
from etl.db.staging import StagedRecord
from etl.payload import RawJson, UncheckedRawJson, content_hash, fingerprint
from etl.pipeline.staging_writes import mark_deleted, stage_records

# Storable text: NUL and lone surrogates are refused by design (see the test below).
storable = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
texts = st.text(storable, max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(storable, max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _rows(payloads: dict[str, dict]) -> list[tuple]:
    return [(source_id, *fingerprint(payload)) for source_id, payload in payloads.items()]


async def _stage(engine, run_id: str, payloads: dict[str, dict]):
    async with session_factory(engine)() as session, session.begin():
        return await stage_records(session, source="s", entity="customer", run_id=run_id, records=_rows(payloads))


async def test_payload_reads_back_whole_and_runs_count_new_changed_unchanged(engine) -> None:
    """A payload with unknown keys, Unicode and nesting reads back equal; a rerun counts by hash."""
    first = {
        "1": {"id": "1", "name": "Søren Ærø «ООО»", "extra_unknown": {"nested": [1, None, "x"]}},
        "2": {"id": "2", "name": "O'Brien & Co", "price": "25.00000000"},
    }
    counts = await _stage(engine, "run-1", first)
    assert (counts.new, counts.changed, counts.unchanged) == (2, 0, 0)
    second = {"1": first["1"], "2": {**first["2"], "price": "26.00000000"}, "3": {"id": "3"}}
    counts = await _stage(engine, "run-2", second)
    assert (counts.new, counts.changed, counts.unchanged) == (1, 1, 1)
    async with engine.connect() as conn:
        stored = dict((await conn.execute(select(StagedRecord.source_id, StagedRecord.payload))).all())
    assert stored == second


async def test_rows_not_seen_by_a_complete_scan_are_marked_deleted(engine) -> None:
    """After a full scan, rows its pass did not see get deleted_at; seen rows keep it empty."""
    await _stage(engine, "run-1", {"1": {"id": 1}, "2": {"id": 2}})
    await _stage(engine, "run-2", {"1": {"id": 1}})
    async with session_factory(engine)() as session, session.begin():
        assert await mark_deleted(session, source="s", entity="customer", markers=["run-2"]) == 1
    async with engine.connect() as conn:
        rows = dict((await conn.execute(select(StagedRecord.source_id, StagedRecord.deleted_at))).all())
    assert rows["1"] is None and rows["2"] is not None


@pytest.mark.parametrize(
    ("payload", "reason"), [({"id": "1", "n": "a\x00b"}, "NUL"), ({"id": "1", "n": "\ud800"}, "undecodable")]
)
def test_unstorable_text_is_refused_with_a_reason(payload: dict, reason: str) -> None:
    """Text a SQL column cannot hold raises ValueError naming the problem (the record is rejected)."""
    with pytest.raises(ValueError, match=reason):
        fingerprint(payload)


@given(st.dictionaries(st.text(storable, max_size=8), json_values, max_size=6))
def test_hash_ignores_key_order_and_sees_every_value(payload: dict) -> None:
    """Reordering keys never changes the hash; changing a value always does."""
    reordered = dict(reversed(list(payload.items())))
    assert fingerprint(payload)[1] == fingerprint(reordered)[1]
    assert fingerprint({**payload, "__probe__": 1})[1] != fingerprint({**payload, "__probe__": 2})[1]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"id":"1","n":"a\\u0000b"}', "NUL"),
        (b'{"id":"1","n":"\\ud800"}', "undecodable"),
        (b'{"id":"1","n":"\xff\xfe"}', "not valid UTF-8"),
    ],
)
def test_raw_records_with_unstorable_text_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        fingerprint(RawJson(raw))


def test_a_malformed_unchecked_slice_is_refused() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        fingerprint(UncheckedRawJson(b'{"id":"1", oops}'))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id":"1","path":"C:\\\\u0000dir"}',  # an escaped backslash before "u0000": text, not a NUL
        b'{"id":"1","smile":"\\ud83d\\ude00"}',  # a surrogate *pair* is one valid character
        b'{"id":"1","name":"\\u00c6r\\u00f8"}',  # PHP's default escaping of non-ASCII
    ],
)
def test_raw_records_with_escapes_that_are_fine_are_kept(raw: bytes) -> None:
    stored, digest = fingerprint(RawJson(raw))
    assert stored == raw.decode() and digest == content_hash(raw)


@given(st.dictionaries(st.text(storable, max_size=8), json_values, max_size=6), st.sampled_from([False, True]))
def test_a_raw_record_is_stored_and_hashed_as_sent(payload: dict, ascii_only: bool) -> None:
    """A compact record is stored as the received bytes, hashed as them, and decodes to the value;
    the same record pretty-printed gets the same text and hash (only inter-token whitespace differs)."""
    raw = json.dumps(payload, ensure_ascii=ascii_only, separators=(",", ":")).encode()
    stored, digest = fingerprint(RawJson(raw))
    assert stored.encode() == raw and digest == content_hash(raw)
    assert json.loads(stored) == payload
    pretty = json.dumps(payload, ensure_ascii=ascii_only, indent=4).encode()
    assert fingerprint(RawJson(pretty)) == (stored, digest)


def test_whitespace_inside_a_string_is_content() -> None:
    """Compacting removes only the whitespace between tokens: a space added inside a value is a change."""
    one = fingerprint(RawJson(b'{ "id": "1",\n  "name": "Ann  Lee", "n": 1.50 }'))
    assert one[0] == '{"id":"1","name":"Ann  Lee","n":1.50}'
    assert fingerprint(RawJson(b'{"id":"1","name":"Ann Lee","n":1.50}'))[1] != one[1]


async def test_raw_payloads_are_kept_byte_for_byte_in_the_database(engine) -> None:
    """Key order, escapes and number spelling survive staging: the column holds the source's (compact) text."""
    raw = b'{"zeta":1,"id":"7","price":"25.10","amount":1.50,"alpha":[],"e":1E5,"s":"a\\/b  c"}'
    async with session_factory(engine)() as session, session.begin():
        await stage_records(
            session, source="s", entity="product", run_id="run-1", records=[("7", *fingerprint(RawJson(raw)))]
        )
    async with engine.connect() as conn:
        stored_text = (await conn.execute(text("SELECT payload FROM staged_records"))).scalar_one()
        decoded = (await conn.execute(select(StagedRecord.payload))).scalar_one()
    assert stored_text.encode() == raw
    assert decoded == json.loads(raw)
