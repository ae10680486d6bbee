"""Pure reading of BILLmanager ``out=json`` answers: the document, its rows, its errors, its paging.

Everything here takes values already read from the wire (conventions §2) and decides:
the ``doc`` of an answer, the rows of a list, which exception a ``doc.error`` is, and
where a paged scan goes next. The panel answers HTTP 200 for application errors, so the
HTTP status only speaks for the infrastructure in front of it (5xx: retry).

JSON conventions (protocols.md §4.3): XML text sits under ``"$"``, attributes become
``"$name"`` keys, every value is a string. A list's rows are ``doc.elem``; the key is absent
when the list is empty, and a one-row list may arrive as a bare object instead of an array
([U]); both are accepted.

``doc.error`` classification (``$type`` / ``$object``):

=============================  ======================================================
``auth``, ``authtype`` (or      session call: :class:`SessionExpired` (log in, retry);
object ``auth``)                otherwise :class:`AuthenticationError` (§4.5: real clients
                                treat ``authtype`` as an authentication failure)
``access``                      :class:`PermissionDenied`
``missed`` without object,      :class:`FunctionMissing` (a :class:`BadRequest`): the
object ``func``, "unknown       installation has no such function; that stream alone ends
function", "Не удалось найти
функцию"
``missed`` ``value`` ``exists`` :class:`BadRequest`
anything else                   :class:`ProtocolError`
=============================  ======================================================

A session call answered with the logon form (``$func: "logon"``, no error, no ``elem``;
§4.5) means the session died without saying so: the session is renewed once and the call
repeated; a second logon form is handed back as it is, and the stream names it as the
doubt that keeps its scan from deleting anything (:mod:`etl.sources.billmanager.paging`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from etl.http.errors import (
    AuthenticationError,
    BadRequest,
    PermissionDenied,
    ProtocolError,
    ProxyPageError,
    SessionExpired,
    SourceError,
    Verdict,
    error_from_status,
    ok,
    renew,
    verdict_of,
)
from etl.http.response import NotJson, RawResponse
from etl.http.retry import parse_retry_after
from etl.redaction import mask_values

REQUEST_ERRORS = frozenset({"missed", "value", "exists"})
SESSION_ERRORS = frozenset({"auth", "authtype"})
LOGON_FUNC = "logon"


class FunctionMissing(BadRequest):
    """The installation has no such function (its module is not loaded, or it has another name)."""


def text(node: Any) -> str | None:
    """The text of a ``{"$": ...}`` node (a bare string is taken as is); None when there is none."""
    if isinstance(node, Mapping):
        node = node.get("$")
    return node if isinstance(node, str) else None


def number(node: Any) -> int | None:
    """An integer node such as ``p_elems``; None when absent or not a number."""
    value = text(node)
    return int(value) if value is not None and value.strip().isdigit() else None


def document(response: RawResponse, func: str) -> dict[str, Any]:
    """The ``doc`` object of an answer, or the classified error of the transport around it."""
    if not (200 <= response.status < 300):
        raise error_from_status(
            response.status,
            f"func={func}: HTTP {response.status} {response.content_type or 'no content type'}",
            retry_after=parse_retry_after(response.header("Retry-After")),
        )
    try:
        body = response.json()
    except NotJson as exc:  # an HTML login page or proxy page
        raise ProxyPageError(f"func={func}: {exc}", status=response.status) from None
    doc = body.get("doc") if isinstance(body, dict) else None
    if not isinstance(doc, dict):
        raise ProxyPageError(f"func={func}: JSON without a doc object", status=response.status)
    return doc


def rows(doc: Mapping[str, Any], func: str = "", *, strict: bool = True) -> list[Any]:
    """The rows of a list: ``elem`` as an array, a lone object, or absent (an empty list); anything
    else is no list at all (a text would otherwise read as one row on every page). ``strict=False``
    counts whatever is there (a logon form's fields, judged as such by the caller)."""
    elem = doc.get("elem")
    if elem is None:
        return []
    if isinstance(elem, list):
        return list(elem)
    if isinstance(elem, Mapping) or not strict:
        return [elem]
    raise ProtocolError(f"func={func}: elem is a {type(elem).__name__}, neither a list nor an object")


def error_for(doc: Mapping[str, Any], func: str, *, session: bool, secrets: Iterable[str] = ()) -> SourceError | None:
    """The exception a ``doc.error`` means, or None when the answer is not an error.

    ``session`` says the call carried a session id that the server had accepted before: an
    authorization error then means the session expired (or was dropped), not bad credentials.
    """
    error = doc.get("error")
    if error is None:
        return None
    if not isinstance(error, Mapping):
        return ProtocolError(f"func={func}: malformed error: {mask_values(str(error)[:120], secrets)}")
    kind, obj = str(error.get("$type") or ""), str(error.get("$object") or "")
    reason = mask_values(" ".join((text(error.get("msg")) or "").split()), secrets)
    where = f"func={func}: error {kind or '?'}" + (f"/{obj}" if obj else "") + (f": {reason}" if reason else "")
    if kind in SESSION_ERRORS or (obj == "auth" and kind != "access"):
        if session:
            return SessionExpired(f"{where} (session expired; logging in again)")
        return AuthenticationError(f"{where} (the panel refused the credentials)")
    if kind == "access":
        return PermissionDenied(f"{where} (the login lacks the right for this function)")
    if _function_missing(kind, obj, reason):
        return FunctionMissing(f"func={func}: the function is not available on this installation ({where})")
    if kind in REQUEST_ERRORS:
        return BadRequest(where)
    return ProtocolError(f"{where} (unknown error type)")


def _function_missing(kind: str, obj: str, reason: str) -> bool:
    said = reason.lower()
    return obj == "func" or (kind == "missed" and not obj) or "unknown function" in said or "найти функцию" in said


def answered_func(doc: Mapping[str, Any]) -> str | None:
    """The function the panel says it answered (``$func``); None when the answer does not say."""
    value = text(doc.get("$func"))
    return value.strip() if value and value.strip() else None


def classify_doc(
    response: RawResponse, func: str, *, session: bool, secrets: Iterable[str] = (), authinfo_login: str = ""
) -> Verdict:
    """The verdict of a panel answer: its ``doc``, renew the session, retry or fail.

    ``authinfo_login`` names the login in an authentication failure of an authinfo call."""
    try:
        doc = document(response, func)
    except SourceError as exc:
        return verdict_of(exc)
    error = error_for(doc, func, session=session, secrets=secrets)
    if error is None and session and func != LOGON_FUNC and answered_func(doc) == LOGON_FUNC:
        # One renewal, then the logon form itself comes back for the stream to name as a doubt.
        message = f"func={func}: the session landed on the logon form; logging in again"
        return renew(message).but(max_attempts=2, accept_when_exhausted=True, value=doc)
    if error is None:
        return ok(doc)
    if isinstance(error, AuthenticationError) and authinfo_login:
        error = AuthenticationError(f"{error} for login {authinfo_login!r} (authinfo)")
    return verdict_of(error)


def session_id(doc: Mapping[str, Any]) -> str | None:
    """The session id of a ``func=auth`` answer: ``doc.auth.$id`` (the element's text as a fallback)."""
    auth = doc.get("auth")
    if not isinstance(auth, Mapping):
        return None
    sid = auth.get("$id") or auth.get("$")
    return sid if isinstance(sid, str) and sid.strip() else None
