"""Microbizz envelopes as pure values: what is sent, and what an answer means.

A request is one JSON envelope (identification plus ``commands``) posted as the form
field ``json``; the answer is ``{"status", "msg", "results": [one per command], "date",
"time"}`` (protocols.md §3.1-3.2). Failures come at two levels:

- the envelope: ``status 0`` with a reason in ``msg`` and no ``results`` [I] (bad
  credentials, a bad contract, an unreadable envelope, a busy server);
- one command: ``results[i].status == 0`` with ``results[i].msg`` [I].

Microbizz documents no error codes, only reasons, so :func:`classify_reason` decides by
their wording: "busy / temporarily / try again" is worth a retry, credential words end the
source, a missing right is a permission error, anything else is a bad request. The HTTP
status of errors is [U]: a non-2xx status is classified by
:func:`etl.http.errors.status_verdict` first, whatever the body says; a 2xx body that is
not JSON is a proxy page (retryable). Messages never carry secrets: they are built from
the status, the command name and the server's reason, with any credential value the
server might echo masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from etl.http.errors import (
    AuthenticationError,
    BadRequest,
    PermissionDenied,
    ProtocolError,
    ProxyPageError,
    SourceBusy,
    SourceError,
    Verdict,
    error_from_status,
    ok,
    verdict_of,
)
from etl.http.response import NotJson, RawResponse
from etl.http.retry import parse_retry_after
from etl.redaction import mask_values as mask

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}$")

# Reasons by wording (English as the API speaks it, plus the Danish a tenant front end may pass on).
_BUSY = re.compile(
    r"\bbusy\b|temporar|try again|retry later|overload|too many|maintenance|deadlock|lock wait|"
    r"timed? ?out|optaget|prøv igen|midlertidigt",
    re.IGNORECASE,
)
_CREDENTIALS = re.compile(
    r"credential|password|api ?key|access ?token|contract|log ?in|authenticat|unauthori[sz]ed|"
    r"username|unknown user|revoked|adgangskode|kontrakt",
    re.IGNORECASE,
)
_PERMISSION = re.compile(
    r"permission|not allowed|forbidden|access denied|no access|rights|adgang nægtet", re.IGNORECASE
)


@dataclass(frozen=True)
class Answer:
    """A successful envelope: one result object per command, and the server's receipt date/time."""

    results: list[dict[str, Any]]
    date: str | None
    time: str | None

    @property
    def watermark(self) -> dict[str, str]:
        """The receipt moment as a sync watermark (protocols.md §3.5: the next run starts there)."""
        if not (self.date and _DATE.match(self.date) and self.time and _TIME.match(self.time)):
            raise ProtocolError(f"answer carries no usable date/time (date={self.date!r}, time={self.time!r})")
        return {"changedate": self.date, "changetime": self.time}


def build_form(identity: Mapping[str, Any], commands: list[dict[str, Any]], remoteagent: str) -> bytes:
    """The urlencoded POST body ``json=<envelope>``; ``haltonerror`` 0 so every command answers."""
    envelope = {**identity, "remoteagent": remoteagent, "haltonerror": 0, "commands": commands}
    text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    return urlencode({"json": text}).encode("ascii")


def is_success(status: Any) -> bool:
    """Microbizz writes booleans as 1/0; accept the other spellings a gateway might produce."""
    if isinstance(status, bool):
        return status
    if isinstance(status, int | float):
        return status == 1
    return isinstance(status, str) and status.strip().lower() in ("1", "true", "ok")


def classify_reason(reason: str, *, envelope: bool) -> type[SourceError]:
    """The error class a failure reason stands for.

    An envelope-level failure that names nothing recognisable is taken for an identification
    problem: that is what envelope failures are (protocols.md §3.2), and the server's reason
    is kept in the message either way. One command refused in credential words, inside an
    envelope whose identification was accepted, is that command's refusal (its stream ends),
    not bad credentials (which would end the source).
    """
    if _BUSY.search(reason):
        return SourceBusy
    if _PERMISSION.search(reason):
        return PermissionDenied
    if _CREDENTIALS.search(reason):
        return AuthenticationError if envelope else PermissionDenied
    if envelope and not re.search(r"json|command|malformed|syntax", reason, re.IGNORECASE):
        return AuthenticationError
    return BadRequest


def read_answer(raw: RawResponse, *, commands: list[str], secrets: Iterable[str] = ()) -> Answer:
    """Judge one HTTP answer to an envelope of ``commands``: an :class:`Answer` or a classified error."""
    secrets = list(secrets)
    if not (200 <= raw.status < 300):
        reason = mask(_reason_of(raw), secrets)
        raise error_from_status(
            raw.status,
            f"POST endpoint: HTTP {raw.status}: {reason}",
            retry_after=parse_retry_after(raw.header("Retry-After")),
        )
    try:
        body = raw.json()
    except NotJson as exc:  # HTML or text from a proxy
        raise ProxyPageError(f"POST endpoint: {exc}", status=raw.status) from None
    if not isinstance(body, dict) or "status" not in body:
        raise ProtocolError(f"POST endpoint: HTTP {raw.status}: JSON answer is not a Microbizz envelope")
    if not is_success(body["status"]):
        reason = mask(str(body.get("msg") or "no reason given"), secrets)
        raise classify_reason(reason, envelope=True)(f"envelope refused: {reason}", status=raw.status)
    results = body.get("results")
    if not isinstance(results, list) or len(results) != len(commands):
        count = len(results) if isinstance(results, list) else "no"
        raise ProtocolError(f"envelope of {len(commands)} commands answered with {count} results")
    for name, result in zip(commands, results, strict=True):
        if not isinstance(result, dict):
            raise ProtocolError(f"{name}: result is a {type(result).__name__}, not an object")
    return Answer(results, _text(body.get("date")), _text(body.get("time")))


def classify_envelope(raw: RawResponse, *, commands: list[str], secrets: Iterable[str] = ()) -> Verdict:
    """The verdict of an envelope's answer: ok with the :class:`Answer`, or retry/fail.

    Every command this client sends is a read, so a busy answer to *any* command retries the
    whole envelope; a command refused for good is left in the answer for its caller."""
    try:
        answer = read_answer(raw, commands=commands, secrets=secrets)
    except SourceError as exc:
        return verdict_of(exc)
    for name, result in zip(commands, answer.results, strict=True):
        error = command_error(result, name, secrets)
        if isinstance(error, SourceBusy):
            return verdict_of(error)
    return ok(answer)


def command_error(result: Mapping[str, Any], command: str, secrets: Iterable[str] = ()) -> SourceError | None:
    """The classified error of a failed command's result, or ``None`` when it succeeded."""
    if is_success(result.get("status")):
        return None
    reason = mask(str(result.get("msg") or "no reason given"), secrets)
    return classify_reason(reason, envelope=False)(f"{command}: {reason}")


def check_result(result: Mapping[str, Any], command: str, secrets: Iterable[str] = ()) -> Mapping[str, Any]:
    """``result`` itself when the command succeeded; else raises its classified error."""
    error = command_error(result, command, secrets)
    if error is not None:
        raise error
    return result


def _reason_of(raw: RawResponse) -> str:
    try:
        body = json.loads(raw.body)
    except (ValueError, UnicodeDecodeError):
        return raw.content_type or "no content type"
    if isinstance(body, dict) and body.get("msg"):
        return str(body["msg"])
    return raw.content_type or "JSON"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
