"""What one fetched page holds, as the engine judges it before staging: good records, rejected ones, checks.

Every record of a page is split here into what staging stores (its id, JSON text and hash), what
it refuses (with the reason, and whether the id could be read at all), and the ids the server
flagged deleted. The checks are the engine's, so they hold for every stream of every source:
an id a staging column cannot hold (too long, NUL, not Unicode) and a record past
``max_record_bytes`` are rejected here, before the insert, on SQLite (which enforces no lengths)
as on PostgreSQL (where one such row would abort the whole COPY of its page).

Pure: no I/O here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import orjson

from etl.http.errors import ProtocolError
from etl.payload import RawJson, fingerprint, id_problem
from etl.pipeline.state import Cursor
from etl.sources.base import Page, RecordRejected, Stream

SHOWN_ID_LENGTH = 100  # a refused id is kept this long, escaped, in rejected_records


@dataclass(frozen=True)
class Rejection:
    """A record staging refuses. ``source_id`` is the id as shown (escaped and cut when the id itself
    is what was refused); ``matches_staged`` says it is an id a staged row can carry, so that row,
    if any, was seen in this pass."""

    source_id: str | None
    payload: Any
    reason: str
    matches_staged: bool = True


@dataclass(frozen=True)
class Split:
    """A page as staging takes it: ``(source_id, json_text, hash)`` rows, rejections, tombstone ids."""

    good: list[tuple[str, Any, str]] = field(default_factory=list)
    bad: list[Rejection] = field(default_factory=list)
    gone: frozenset[str] = frozenset()

    @property
    def unidentified(self) -> int:
        """Rejected records whose id could not be read or kept: any of them may be a staged row seen again."""
        return sum(1 for rejection in self.bad if rejection.source_id is None or not rejection.matches_staged)


def shown_id(source_id: str) -> str:
    """A refused id as rejected_records keeps it: escaped to plain text and cut to a safe length."""
    text = source_id.encode("utf-8", errors="backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text if len(text) <= SHOWN_ID_LENGTH else f"{text[:SHOWN_ID_LENGTH]}..."


def split_page(stream: Stream, records: list[Any], *, max_record_bytes: int | None = None) -> Split:
    """Good records with id and hash, the rejected ones with their reasons, and the ids of tombstones."""
    good, bad, gone = [], [], set()
    limit = max_record_bytes or stream.settings.max_record_bytes
    for record in records:
        source_id = None
        try:
            source_id = stream.source_id(record)
            if problem := id_problem(source_id):
                bad.append(Rejection(shown_id(source_id), record, problem, matches_staged=False))
                continue
            if isinstance(record, RawJson) and len(record) > limit:
                raise RecordRejected(f"record is {len(record):,} bytes, over max_record_bytes {limit:,}")
            text, digest = fingerprint(record)
            if len(text) > limit:
                raise RecordRejected(f"record is {len(text):,} characters, over max_record_bytes {limit:,}")
            good.append((source_id, text, digest))
            if stream.is_deleted(record):
                gone.add(source_id)
        except (RecordRejected, ValueError) as exc:
            bad.append(Rejection(source_id, record, str(exc)))
    return Split(good, bad, frozenset(gone))


def check_progress(stream: Stream, asked: Cursor, page: Page, seen: set[str]) -> None:
    """Refuse a page whose next cursor repeats one of this scan or does not move past the one asked,
    and a cursor or watermark the state column cannot store (it is built from the server's answer)."""
    for name, value in (("cursor", page.next_cursor), ("watermark", page.watermark)):
        if value is not None and not storable_json(value):
            raise ProtocolError(f"stream {stream.name}: the server's answer makes a {name} that cannot be stored "
                                "(a NUL, an unpaired surrogate or a value JSON cannot hold)")  # fmt: skip
    following = page.next_cursor
    if following is None:
        return
    key = repr(sorted(following.items()))
    before, after = stream.position(asked), stream.position(following)
    if following == asked or key in seen or (before is not None and after is not None and after <= before):
        raise ProtocolError(
            f"stream {stream.name}: the page at {asked} did not move forward (next {following}); "
            "the server may be ignoring its paging or sort parameters"
        )
    seen.add(key)


def storable_json(value: Any) -> bool:
    """Whether ``value`` can be written to a JSON column on both databases (PostgreSQL's jsonb refuses
    the NUL escape, and no JSON text holds an unpaired surrogate)."""
    try:
        orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return False
    return not _holds_nul(value)


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    return False


def check_order(stream: Stream, split: Split) -> None:
    """For keyset streams: a page's ids must ascend (a server ignoring the sort would skip records)."""
    ids = [int(source_id) for source_id, _payload, _digest in split.good if source_id.isdigit()]
    if any(later <= earlier for earlier, later in itertools.pairwise(ids)):
        raise ProtocolError(f"stream {stream.name}: a page's ids are not in ascending order")
