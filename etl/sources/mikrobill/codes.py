"""MikroBILL result codes -> what the ETL does about them, as one configurable table.

The manual only says ``code == 0`` is success and any other number is a failure
whose ``return`` is a text reason (protocols.md §2.2); the numbers themselves are
[U]. So the numbers are a setting, ``options.codes``, one list of codes per category,
and this package assumes none: a non-zero code that is not in the table fails its
call naming the number. The shipped ``settings.yaml`` carries the table of the
MikroBILL simulator; an installation whose core answers differently writes its own::

    options:
      codes: {busy: [8], session: [15], auth: [10, 14], permission: [11, 12, 13],
              not_found: [2, 3, 9], too_large: [7], bad_request: [1, 4, 5, 6, 16]}

=============  ====================================================================
category       verdict
=============  ====================================================================
busy           retry (refused without effect: safe even for a write)
session        renew: connect again, then retry
auth           fail: AuthenticationError (the source ends)
permission     fail: PermissionDenied (the stream ends)
not_found      inside a batch: that record is rejected with the reason; else BadRequest
too_large      fail: BatchTooLarge (the batch is split in half and sent again)
bad_request    fail: BadRequest (e.g. a path this installation lacks: the stream ends)
(not listed)   fail: ProtocolError naming the code, so it can be added to the table
=============  ====================================================================

Pure: no I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from etl.http.errors import (
    AuthenticationError,
    BadRequest,
    PermissionDenied,
    ProtocolError,
    SessionExpired,
    SourceBusy,
    SourceError,
    Verdict,
    fail,
    ok,
    renew,
    retry,
)

CATEGORIES = ("busy", "session", "auth", "permission", "not_found", "too_large", "bad_request")


class BatchTooLarge(BadRequest):
    """The core refused a batch for its size; the reader splits it."""


ERRORS: dict[str, type[SourceError]] = {
    "busy": SourceBusy,
    "session": SessionExpired,
    "auth": AuthenticationError,
    "permission": PermissionDenied,
    # Outside a batch a missing object is a wrong request: nothing names a path we did not list.
    "not_found": BadRequest,
    "too_large": BatchTooLarge,
    "bad_request": BadRequest,
}


class CodeTable:
    """Non-zero ``code`` -> category, from ``options.codes`` (validated by the settings model)."""

    def __init__(self, table: Mapping[str, Iterable[int]] | None = None) -> None:
        self._category = {code: category for category, codes in (table or {}).items() for code in codes}

    def category(self, code: Any) -> str | None:
        """The category of a non-zero code, or ``None`` when the table does not know it."""
        return self._category.get(code) if _is_int(code) else None

    def error(self, code: Any, reason: Any, what: str) -> SourceError:
        """The exception for a failed envelope of ``what`` (a command path, never arguments)."""
        return self.verdict({"code": code, "return": reason}, what).exception()

    def verdict(self, envelope: Any, what: str) -> Verdict:
        """What a ``{"return", "code"}`` envelope means: ``ok`` with its ``return``, or why not."""
        if not isinstance(envelope, Mapping) or "code" not in envelope:
            return fail(ProtocolError, f"{what}: expected a {{return, code}} envelope, got {type(envelope).__name__}")
        code, reason = envelope["code"], envelope.get("return")
        if code == 0 and _is_int(code):
            return ok(reason)
        text = reason if isinstance(reason, str) else repr(reason)
        category = self.category(code)
        if category is None:
            return fail(ProtocolError, f"{what}: MikroBILL code {code!r} is not in options.codes: {text}")
        message = f"{what}: MikroBILL code {code} ({category}): {text}"
        if category == "busy":
            return retry(SourceBusy, message, without_effect=True)
        if category == "session":
            return renew(message)
        return fail(ERRORS[category], message)

    def value(self, envelope: Any, what: str) -> Any:
        """The ``return`` of a successful envelope; raise the classified error otherwise."""
        verdict = self.verdict(envelope, what)
        if verdict.action != "ok":
            raise verdict.exception()
        return verdict.value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
