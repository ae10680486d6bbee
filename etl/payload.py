"""Payloads as staging sees them: raw JSON slices, canonical JSON, and the fingerprint of each.

JSON records are kept as the exact bytes the server sent, until staging stores them.

A list page of a few hundred 3-5 KB objects costs far more to parse into dicts and
serialize again than to stage: the engine only needs each record's id, a content hash
and the text to store. So sources that answer plain JSON arrays split a page into
:class:`RawJson` slices (msgspec scans the array without building its objects), read
the id of each with a decoder that skips every other field, and hash and store the
slice as it came. The staged payload is then the server's own text, every field and
its order included.

A page msgspec refuses as a whole (a record with an unpaired surrogate escape, which
PHP never writes but a broken proxy or database might) is split by a structural scan
instead, so the bad record alone is rejected later and its neighbours keep the same
bytes, hence the same hashes, as on any other run.

Every staged payload gets a *fingerprint*: the JSON text to store and its content hash. A
raw slice is stored and hashed *compacted*: the whitespace between JSON tokens removed, every
string, escape, number spelling and key order kept byte for byte, without decoding it
(msgspec's formatter, ~4 µs for a 4 KB record). So a server that switches between pretty and
compact output (Dolibarr's ``API_PRODUCTION_MODE``) changes neither the hash nor the stored
text, while a space added inside a string value does. A decoded value is serialized
canonically (sorted keys, no whitespace). The hash is XXH3-128 (0.2 µs for 4 KB against
2.9 µs for SHA-256 here): it detects changes, it does not defend against a server forging
collisions. Text a SQL text column cannot hold (invalid UTF-8, NUL, an
unpaired surrogate) raises ``ValueError`` with the reason, and the record is rejected.

Pure: no I/O here.
"""

from __future__ import annotations

import contextlib
import json
import re
from functools import cache
from typing import Any

import msgspec
import orjson
import xxhash

_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
# The longest source id staging keeps (the staged_records column); longer ones are refused before
# the insert, since SQLite enforces no length and PostgreSQL would fail the whole page with it.
SOURCE_ID_LENGTH = 128
NUL_REASON = "text contains a NUL character, which SQL text columns cannot store"
# msgspec and Python's json stop at their recursion limits (about a thousand levels) with a
# RecursionError; a record nested that deep is refused alone rather than failing its page.
TOO_DEEP_REASON = "JSON nested deeper than the readers' recursion limit"


class JsonText(str):
    """JSON already serialized (staging hashes it anyway): stored as is, not encoded a second time."""


class RawJson(bytes):
    """One JSON value exactly as the server sent it, known to be well-formed JSON (its text is
    not yet checked for what staging refuses: invalid UTF-8, NUL, unpaired surrogates)."""

    __slots__ = ()
    checked = True

    def value(self) -> Any:
        """The decoded value; :class:`ValueError` when it is not valid JSON.

        Python's own parser is the fallback because it accepts unpaired surrogate escapes,
        which must reach staging to be rejected with their reason, not fail a page."""
        try:
            return orjson.loads(self)
        except orjson.JSONDecodeError:
            try:
                return json.loads(self)
            except RecursionError:
                raise ValueError(TOO_DEEP_REASON) from None
            except (ValueError, UnicodeDecodeError) as exc:
                raise ValueError(f"not valid JSON: {exc}") from None


class UncheckedRawJson(RawJson):
    """A slice cut by the structural scan: it may not be well-formed JSON at all."""

    __slots__ = ()
    checked = False


class NotAnArray(ValueError):
    """The body is valid JSON but not an array (an error object, a paginated envelope)."""


class CompactRawJson(RawJson):
    """A raw slice of a page compacted as a whole: already in the form staging stores and hashes."""

    __slots__ = ()


def split_array(body: bytes) -> list[RawJson]:
    """The elements of a top-level JSON array as raw slices, without decoding them.

    The page is compacted in one pass first (one C call for the page instead of one per record:
    a third of a record's parsing cost), so each slice is already the text staging keeps. A page
    the formatter refuses is split as sent, each record compacted on its own later.

    Raises :class:`NotAnArray` for any other JSON value and :class:`ValueError` when the
    body is not JSON at all or is cut short.
    """
    with contextlib.suppress(msgspec.DecodeError, RecursionError):
        page = msgspec.json.format(body, indent=-1)
        with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return [CompactRawJson(element) for element in _ARRAY.decode(page)]
    try:
        return [RawJson(element) for element in _ARRAY.decode(body)]
    except msgspec.ValidationError:
        raise NotAnArray("the body is JSON but not an array") from None
    except (msgspec.DecodeError, RecursionError):
        return _split_structurally(body)


# Strings (with their escapes) or one structural character; everything between is scalars/space.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)


def _split_structurally(body: bytes) -> list[RawJson]:
    """Slow path for arrays whose *contents* a strict decoder refuses: slice on the array's own
    commas, leaving each element to be judged on its own."""
    stripped = body.strip()
    if not stripped.startswith(b"["):
        raise NotAnArray("the body is not an array") if stripped[:1] == b"{" else ValueError("not JSON")
    offset = len(body) - len(body.lstrip())
    depth, start, elements = 0, None, []
    for token in _TOKENS.finditer(body, offset):
        mark = token.group()
        if mark in (b"[", b"{"):
            depth += 1
            if depth == 1:
                start = token.end()
        elif mark in (b"]", b"}"):
            depth -= 1
            if depth == 0:
                _append_element(elements, body[start : token.start()])
                if body[token.end() :].strip():
                    raise ValueError("data after the end of the array")
                return elements
        elif mark == b"," and depth == 1:
            _append_element(elements, body[start : token.start()], required=True)
            start = token.end()
    raise ValueError("the array is cut short")


def _append_element(elements: list[RawJson], piece: bytes, *, required: bool = False) -> None:
    piece = piece.strip()
    if piece:
        elements.append(UncheckedRawJson(piece))
    elif required or elements:
        raise ValueError("an empty element in the array")


@cache
def _field_decoder(name: str) -> msgspec.json.Decoder:
    # A struct with one field: msgspec skips every other key without building its value.
    return msgspec.json.Decoder(msgspec.defstruct("OneField", [(name, object, msgspec.UNSET)]))


def peek(record: RawJson, name: str) -> Any:
    """The value of one top-level key of a raw JSON object (``None`` when absent).

    Raises :class:`TypeError` naming the Python type when the record is not an object, and
    :class:`ValueError` when it is not valid JSON."""
    try:
        value = getattr(_field_decoder(name).decode(record), name)
    except RecursionError:
        raise ValueError(TOO_DEEP_REASON) from None
    except (msgspec.ValidationError, msgspec.DecodeError):
        decoded = record.value()  # the slow path, for an exact reason
        if not isinstance(decoded, dict):
            raise TypeError(type(decoded).__name__) from None
        return decoded.get(name)
    return None if value is msgspec.UNSET else value


def canonical_json(payload: Any) -> bytes:
    """Stable UTF-8 text of a payload: sorted keys, no whitespace; raises ``ValueError`` on bad text."""
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    except orjson.JSONEncodeError as exc:
        if "surrogates" in str(exc) or "str is not valid UTF-8" in str(exc):
            raise ValueError("undecodable text (an unpaired surrogate, not valid Unicode)") from None
        raise ValueError(f"payload cannot be stored as JSON: {exc}") from None


def content_hash(data: bytes) -> str:
    """The hash staging compares: XXH3-128 of the stored JSON text, as 32 hex digits."""
    return xxhash.xxh3_128_hexdigest(data)


def compact(data: bytes) -> bytes:
    """JSON text without the whitespace between its tokens, everything else byte for byte;
    ``data`` itself when the formatter cannot read it (the record is judged on its own later)."""
    try:
        return msgspec.json.format(data, indent=-1)
    except RecursionError:
        raise ValueError(TOO_DEEP_REASON) from None
    except msgspec.DecodeError:
        return data


def fingerprint(payload: Any) -> tuple[JsonText, str]:
    """The payload's JSON text, ready to store as is, and its content hash.

    A :class:`RawJson` record is stored and hashed compacted (see the module docstring); a
    decoded value is serialized canonically first."""
    if isinstance(payload, RawJson):
        return _raw_fingerprint(payload)
    data = canonical_json(payload)
    if _has_nul_escape(data):
        raise ValueError(NUL_REASON)
    return JsonText(data.decode()), content_hash(data)


def _raw_fingerprint(record: RawJson) -> tuple[JsonText, str]:
    data = record if isinstance(record, CompactRawJson) else compact(record)
    try:
        text = JsonText(data, "utf-8")  # decoded straight into the marker type: one copy, not two
    except UnicodeDecodeError as exc:
        raise ValueError(f"undecodable text (not valid UTF-8 at byte {exc.start})") from None
    escapes = _may_hold_u_escape(data)  # one scan for both checks below: most payloads have none
    if not record.checked or (escapes and _has_surrogate_escape(data)):
        canonical_json(record.value())  # the reason for malformed JSON or an unpaired surrogate
    if escapes and _has_nul_escape(data):
        raise ValueError(NUL_REASON)
    return text, content_hash(data)


def _may_hold_u_escape(data: bytes) -> bool:
    """Whether a ``\\u`` escape may be in ``data``: a memchr hop from backslash to backslash (0.1 µs
    for a 3.5 KB record) where ``b"\\u" in data`` takes 2.8 µs. A pair of backslashes is one
    escaped backslash, so the hop goes past both."""
    at = data.find(b"\\")
    while at != -1:
        if data[at + 1 : at + 2] == b"u":
            return True
        at = data.find(b"\\", at + 2)
    return False


def _has_escape(data: bytes, escape: bytes, following: frozenset[bytes] = frozenset()) -> bool:
    """Whether ``data`` holds the JSON escape ``escape`` (``\\u0000``, or ``\\uD`` followed by one of
    ``following``) that is not itself an escaped backslash and a literal ``u...``. ``bytes.find``
    is a memchr-speed scan: a regex over every 4 KB record was a tenth of a staged record's cost."""
    at = data.find(escape)
    while at != -1:
        after = at + len(escape)
        if not following or data[after : after + 1] in following:
            before = at - 1
            while before >= 0 and data[before] == 0x5C:  # backslash
                before -= 1
            if (at - 1 - before) % 2 == 0:
                return True
        at = data.find(escape, at + 1)
    return False


def _has_nul_escape(data: bytes) -> bool:
    return _may_hold_u_escape(data) and _has_escape(data, b"\\u0000")


def _has_surrogate_escape(data: bytes) -> bool:
    if not _may_hold_u_escape(data):  # most payloads stop here
        return False
    return _has_escape(data, b"\\ud", _SURROGATE_DIGITS) or _has_escape(data, b"\\uD", _SURROGATE_DIGITS)


_SURROGATE_DIGITS = frozenset(bytes([c]) for c in b"89abcdefABCDEF")  # D800-DFFF, high and low


def id_problem(source_id: str) -> str | None:
    """Why a staging id column cannot hold ``source_id``, or None when it can."""
    if len(source_id) > SOURCE_ID_LENGTH:
        return f"id is {len(source_id)} characters long; staging ids hold at most {SOURCE_ID_LENGTH}"
    if "\x00" in source_id:
        return "id contains a NUL character"
    try:
        source_id.encode("utf-8")
    except UnicodeEncodeError:
        return "id is not valid Unicode (an unpaired surrogate)"
    return None
