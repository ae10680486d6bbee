"""Pure classification of Dolibarr REST answers: status and body to a verdict.

Dolibarr answers errors as ``{"error": {"code", "message": "<Reason>: <text>", "0": detail}}``
with the HTTP status equal to ``code``. Lists that are empty answer ``[]`` on NEW servers
and 404 "No <x> found" on OLD ones (thirdparties always 404); both mean "no rows". Some
failures are not JSON at all: a disabled API module (HTTP 200 text), an IP filter (503 text),
an unknown endpoint (501 text), and the proxies in front add their own HTML pages.

=====================================  ==============================================================
answer                                 verdict
=====================================  ==============================================================
2xx list (bare array)                  ok: the records as raw slices (:mod:`etl.payload`)
2xx ``{"data": [...]}``                ok: its ``data`` as raw slices and ``pagination.total``
                                       (``pagination_data=true``)
2xx ``{"error": ...}``                 fail: ProtocolError
2xx an HTML document (``<html``,       fail: MisconfiguredBaseUrl, naming ``.../api/index.php`` (a
``<form``) where JSON is due           base URL without it answers the web login page, §1.9)
2xx other text (module disabled)       retry: ProxyPageError
304 / empty 2xx body, not a list       ok: nothing (a second validate answers 304, §1.3)
304 / empty 2xx body on a list         retry once, then fail: ProtocolError (never "no more rows": an
                                       empty list is ``[]`` or a 404 "No ... found")
404 "No ... found" on a list           ok: no rows; after a full page (``confirm``): retry, then
                                       accepted as the end when still so
401 naming a right ("Insuffisant       fail: PermissionDenied (OLD servers answer a missing right or
rights", "Access not allowed for")     a denied object with 401; NEW ones with 403): the stream ends
other 401                              retry up to ``auth_confirmations`` (Dolibarr sleeps a second
                                       on a bad key; a key check fails briefly while the database
                                       restarts), then AuthenticationError
403                                    fail: PermissionDenied
5xx / 429 with a JSON body             retry: ServerError / RateLimited (Dolibarr's own, e.g. DB error)
5xx with a text or HTML body           retry: ProxyPageError
other 4xx, 501                         fail: BadRequest
=====================================  ==============================================================
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from etl.http.errors import (
    AuthenticationError,
    ConfigurationError,
    PermissionDenied,
    ProtocolError,
    ProxyPageError,
    RetryableError,
    Verdict,
    fail,
    ok,
    retry,
    status_verdict,
)
from etl.http.response import NotJson, RawResponse
from etl.http.retry import parse_retry_after
from etl.payload import RawJson, split_array

EMPTY_LIST_404 = ("No ", "not found")
# OLD servers' 401 for a right the key's user lacks, rather than for the key itself (protocols.md §1.3).
RIGHTS_401 = re.compile(r"insuffi\w* rights|not allowed", re.IGNORECASE)


@dataclass(frozen=True)
class Listing:
    """A list answer: its records (raw slices) and, when asked with ``pagination_data``, the server's count."""

    records: list[Any] = field(default_factory=list)
    total: int | None = None


class MisconfiguredBaseUrl(ConfigurationError):
    """The base URL reaches a web page, not the REST API: a configuration error, named as one."""


class _Envelope(msgspec.Struct):
    data: list[msgspec.Raw]
    pagination: dict[str, Any] = {}


_ENVELOPE = msgspec.json.Decoder(_Envelope)
# A whole web page (Dolibarr's login form), as against index.php's one-line "module not active" text.
HTML_DOCUMENT = re.compile(rb"<(html|form|!doctype html)\b", re.IGNORECASE)


class EmptyPageToConfirm(RetryableError):
    """A 404 "none found" after a full page: asked again before it is taken as the end (never raised)."""

    kind = "empty_page"


def classify_read(
    response: RawResponse,
    what: str,
    *,
    list_call: bool,
    confirm_empty: int = 0,
    auth_confirmations: int = 1,
    web_page_is_misconfiguration: bool = False,
) -> Verdict:
    """A read's answer: its JSON (raw records for a list) or what to do about it.

    ``confirm_empty`` > 0 asks a 404 "none found" again that many times before taking it as
    the end of the list (it comes both at the true end and when an OLD server glitches)."""
    status = response.status
    if 200 <= status < 300 or status == 304:
        return _success(response, what, list_call=list_call, web_page=web_page_is_misconfiguration)
    body = response.json_or_none()
    message = f"{what}: HTTP {status}: {error_message(body) or response.snippet(120) or response.content_type}"
    if status == 404 and list_call and any(marker in error_message(body) for marker in EMPTY_LIST_404):
        if confirm_empty:
            return retry(
                EmptyPageToConfirm, message, value=Listing(), accept_when_exhausted=True, max_attempts=confirm_empty + 1
            )
        return ok(Listing())
    if status == 401 and RIGHTS_401.search(message):
        return fail(PermissionDenied, message, status=401)
    if status == 401:
        return retry(AuthenticationError, message, status=401, without_effect=True, max_attempts=auth_confirmations)
    if status == 403:
        return fail(PermissionDenied, message, status=403)
    verdict = status_verdict(status, message, retry_after=parse_retry_after(response.header("Retry-After")))
    if verdict.action == "retry" and body is None and status != 429:
        return verdict.but(error=ProxyPageError)  # an HTML or text page: the proxy talking, not Dolibarr
    return verdict


def _success(response: RawResponse, what: str, *, list_call: bool, web_page: bool = False) -> Verdict:
    if response.status == 304 or not response.body.strip():
        if not list_call:
            return ok(None)
        said = "HTTP 304 Not Modified" if response.status == 304 else f"HTTP {response.status} with an empty body"
        # A proxy or a cache in between may have cut it: asked once more, then the stream fails.
        return retry(ProtocolError, f"{what}: {said} where a JSON list is due (not taken for the end of the list)",
                     status=response.status, max_attempts=2)  # fmt: skip
    if list_call:
        with contextlib.suppress(ValueError):  # not a bare array: judged as JSON below
            return ok(Listing(split_array(response.body)))
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            return ok(_counted(_ENVELOPE.decode(response.body)))
    try:
        body = response.json()
    except NotJson as exc:
        # At open (GET status) a web page is the base URL's fault; later, a maintenance or WAF page passing by.
        if web_page and HTML_DOCUMENT.search(response.body[:4096]):
            return fail(MisconfiguredBaseUrl, f"{what}: {exc}", status=response.status)
        return retry(ProxyPageError, f"{what}: {exc}", status=response.status)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return fail(ProtocolError, f"{what}: HTTP {response.status} with an error body: {error_message(body)}")
    if list_call:
        return fail(ProtocolError, f"{what}: expected a JSON list, got {type(body).__name__}")
    return ok(body)


def _counted(envelope: _Envelope) -> Listing:
    """``{"data": [...], "pagination": {"total": N, ...}}``: the records, and N when it is a count."""
    total = envelope.pagination.get("total")
    if isinstance(total, str) and total.isdigit():
        total = int(total)
    valid = isinstance(total, int) and not isinstance(total, bool) and total >= 0
    return Listing([RawJson(item) for item in envelope.data], total if valid else None)


def classify_login(response: RawResponse) -> Verdict:
    """``POST /login``: the token, or why there is none (403 "Access denied": bad login)."""
    if response.status in (401, 403):
        body = response.json_or_none()
        reason = error_message(body) or response.snippet(120)
        return fail(AuthenticationError, f"POST login: HTTP {response.status}: {reason}", status=response.status)
    verdict = classify_read(response, "POST login", list_call=False)
    if verdict.action != "ok":
        return verdict
    success = verdict.value.get("success") if isinstance(verdict.value, dict) else None
    token = success.get("token") if isinstance(success, dict) else None
    if not isinstance(token, str) or not token:
        return fail(ProtocolError, "POST login: the answer holds no success.token")
    return ok(token)


def classify_create(response: RawResponse, what: str) -> Verdict:
    """A create (``POST /products``...): the new object's id, or what to do about the answer."""
    verdict = classify_read(response, what, list_call=False)
    if verdict.action != "ok":
        return verdict
    value = verdict.value
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
        return fail(ProtocolError, f"{what}: expected the new id, got {str(value)[:60]!r}")
    return ok(int(value))


def error_message(body: Any) -> str:
    """``error.message`` plus numbered details ("0", "1", …) of a Restler error body."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return ""
    error = body["error"]
    details = [str(error[k]) for k in sorted(error, key=str) if str(k).isdigit()]
    return "; ".join([str(error.get("message", "")), *details]).strip("; ")
