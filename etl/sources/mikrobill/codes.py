"""MikroBILL result codes -> what the ETL does about them, as one configurable table.

The manual only says ``code == 0`` is success and any other number is a failure
whose ``return`` is a text reason (protocols.md §2.2); the numbers themselves are
[U]. So the numbers live in a table, ``settings.options["codes"]``, with one list
of codes per category; the defaults below are the MikroBILL simulator's [guess]
numbers, and an installation whose core answers differently overrides them::

    options:
      codes: {busy: [8, 42], not_found: [2, 3, 9]}   # only the categories given are replaced

=============  ==========================  ==========================================
category       default codes ([guess])     what happens
=============  ==========================  ==========================================
busy           8 (core busy)               :class:`SourceBusy`: retried with backoff
session        15 (not connected)          :class:`SessionExpired`: reconnect, retry
auth           10 (password), 14 (CRYPTO)  :class:`AuthenticationError`: source ends
permission     11 (no API right),          :class:`PermissionDenied`: source ends
               12 (hours), 13 (IP)
not_found      2 (client), 3 (account),    inside a batch: that record is rejected
               9 (tariff/service)          with the reason; elsewhere :class:`BadRequest`
too_large      7 (batch too large)         the batch is split in half and sent again
bad_request    1 (no such path), 4, 5, 6,  :class:`BadRequest`: source ends
               16
(anything else)                            :class:`ProtocolError`: source ends, the
                                           message names the code so it can be added
=============  ==========================  ==========================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from etl.http.errors import (
    AuthenticationError,
    BadRequest,
    FatalError,
    PermissionDenied,
    ProtocolError,
    SessionExpired,
    SourceBusy,
    SourceError,
)

DEFAULT_CODES: dict[str, tuple[int, ...]] = {
    "busy": (8,),
    "session": (15,),
    "auth": (10, 14),
    "permission": (11, 12, 13),
    "not_found": (2, 3, 9),
    "too_large": (7,),
    "bad_request": (1, 4, 5, 6, 16),
}
ERRORS: dict[str, type[SourceError]] = {
    "busy": SourceBusy,
    "session": SessionExpired,
    "auth": AuthenticationError,
    "permission": PermissionDenied,
    # Outside a batch a missing object is a wrong request: nothing names a path we did not list.
    "not_found": BadRequest,
    "too_large": BadRequest,
    "bad_request": BadRequest,
}


class CodeTable:
    """Non-zero ``code`` -> category, built from the defaults and ``options["codes"]``."""

    def __init__(self, overrides: Mapping[str, Iterable[int]] | None = None) -> None:
        categories = dict(DEFAULT_CODES)
        for category, codes in (overrides or {}).items():
            if category not in ERRORS:
                raise FatalError(f"options.codes: unknown category {category!r} (known: {', '.join(ERRORS)})")
            if isinstance(codes, (str, bytes)) or not all(_is_int(code) for code in codes):
                raise FatalError(f"options.codes.{category} must be a list of integers")
            categories[category] = tuple(codes)
        self._category = {code: category for category, codes in categories.items() for code in codes}

    def category(self, code: int) -> str | None:
        """The category of a non-zero code, or ``None`` when the table does not know it."""
        return self._category.get(code)

    def error(self, code: Any, reason: Any, what: str) -> SourceError:
        """The exception for a failed envelope of ``what`` (a command path, never arguments)."""
        category = self.category(code) if _is_int(code) else None
        text = reason if isinstance(reason, str) else repr(reason)
        if category is None:
            return ProtocolError(f"{what}: MikroBILL code {code!r} is not in options.codes: {text}")
        return ERRORS[category](f"{what}: MikroBILL code {code} ({category}): {text}")

    def value(self, envelope: Any, what: str) -> Any:
        """The ``return`` of a successful ``{"return","code"}`` envelope; raise the classified error otherwise."""
        if not isinstance(envelope, Mapping) or "code" not in envelope:
            raise ProtocolError(f"{what}: expected a {{return, code}} envelope, got {type(envelope).__name__}")
        if envelope["code"] != 0 or isinstance(envelope["code"], bool):
            raise self.error(envelope["code"], envelope.get("return"), what)
        return envelope.get("return")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
