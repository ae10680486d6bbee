"""Microbizz envelopes as pure values: what is sent, and what an answer means.

A request is one JSON envelope (identification plus ``commands``) posted as the form
field ``json``; the answer is ``{"status", "msg", "results": [one per command], "date",
"time"}`` (protocols.md §3.1-3.2). Failures come at two levels:

- the envelope: ``status 0`` with a reason in ``msg`` and no ``results`` [I] (bad
  credentials, a bad contract, an unreadable envelope, a busy server);
- one command: ``results[i].status == 0`` with ``results[i].msg`` [I].

Microbizz documents neither error codes nor error texts (protocols.md §3.5 [U]), so the
*structure* decides first and wording only where nothing else can:

- a command's ``status 0`` inside an accepted envelope is that command's failure: the
  identification was accepted, so it never ends the source (busy wording retries it,
  anything else ends its stream);
- an envelope's ``status 0`` is bad credentials **only** when its reason contains one of
  the operator's ``credential_words`` (option; the defaults are the English and Danish
  words seen in clients and the simulator). Busy wording retries; a reason naming our own
  envelope (json, command, syntax) is a bad request; **any other reason is an unrecognised
  server failure**: retried ``envelope_attempts`` times, then reported as a server error
  naming the reason, never as bad credentials. An operator who sees a real credential
  refusal reported that way adds its word to ``credential_words``.

The HTTP status of errors is [U]: a non-2xx status is classified by
:func:`etl.http.errors.status_verdict` first, whatever the body says; a 2xx body that is
not JSON is a proxy page (retryable). Messages never carry secrets: they are built from
the status, the command name and the server's reason, with any credential value the
server might echo masked.

Pure: no I/O here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlencode

from etl.http.errors import (
    AuthenticationError,
    BadRequest,
    PermissionDenied,
    ProtocolError,
    ProxyPageError,
    ServerError,
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
# Words that make an envelope refusal a credential refusal; the operator's option replaces them.
CREDENTIAL_WORDS: tuple[str, ...] = (
    "credential",
    "password",
    "api key",
    "apikey",
    "access token",
    "accesstoken",
    "contract",
    "login",
    "log in",
    "authenticat",
    "unauthorized",
    "unauthorised",
    "username",
    "unknown user",
    "revoked",
    "adgangskode",
    "kontrakt",
)
# Attempts an unrecognised envelope failure gets before it is reported.
ENVELOPE_ATTEMPTS = 3
_PERMISSION = re.compile(
    r"permission|not allowed|forbidden|access denied|no access|rights|adgang nægtet", re.IGNORECASE
)
_OUR_ENVELOPE = re.compile(r"json|command|malformed|syntax", re.IGNORECASE)


class UnrecognisedEnvelopeFailure(ServerError):
    """An envelope ``status 0`` whose reason names nothing we know: the server's failure, retried a few times."""


@cache
def _words(words: tuple[str, ...]) -> re.Pattern[str]:
    # Plain words, not regexes: an operator configures them; an empty list matches nothing.
    return re.compile("|".join(re.escape(word) for word in words) or r"(?!)", re.IGNORECASE)


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


def overlapped(watermark: Mapping[str, str], seconds: int) -> dict[str, str]:
    """``watermark`` moved ``seconds`` earlier, in the tenant's own wall-clock terms (never before 1970).

    The arithmetic is on the local date/time as the server wrote it, with no zone: an hour
    back from a moment inside the repeated DST hour lands before both passes of it."""
    moment = datetime.strptime(f"{watermark['changedate']} {watermark['changetime']}", "%Y-%m-%d %H:%M:%S")
    earlier = max(moment - timedelta(seconds=seconds), datetime(1970, 1, 1))
    return {"changedate": earlier.strftime("%Y-%m-%d"), "changetime": earlier.strftime("%H:%M:%S")}


def _boolean(value: Any, words: tuple[str, ...]) -> bool:
    """Microbizz writes booleans as 1/0 (protocols.md §3.3); a gateway may spell them otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in words


def flag_set(value: Any) -> bool:
    """A Microbizz boolean field read back: ``1``, or true/"1"/"yes"."""
    return _boolean(value, ("1", "true", "yes"))


def build_form(identity: Mapping[str, Any], commands: list[dict[str, Any]], remoteagent: str) -> bytes:
    """The urlencoded POST body ``json=<envelope>``; ``haltonerror`` 0 so every command answers."""
    envelope = {**identity, "remoteagent": remoteagent, "haltonerror": 0, "commands": commands}
    text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    return urlencode({"json": text}).encode("ascii")


def is_success(status: Any) -> bool:
    """An envelope's or a command's ``status``: ``1``, or true/"1"/"ok"."""
    return _boolean(status, ("1", "true", "ok"))


def classify_reason(
    reason: str, *, envelope: bool, credential_words: tuple[str, ...] = CREDENTIAL_WORDS
) -> type[SourceError]:
    """The error class a failure reason stands for, at envelope or at command level.

    Only an *envelope* refused in ``credential_words`` is an :class:`AuthenticationError`
    (the source ends). One command refused in those words, inside an envelope whose
    identification was accepted, is that command's refusal (its stream ends). An envelope
    refused for a reason in no list is :class:`UnrecognisedEnvelopeFailure` (retryable).
    """
    if _BUSY.search(reason):
        return SourceBusy
    if _PERMISSION.search(reason):
        return PermissionDenied
    if _words(credential_words).search(reason):
        return AuthenticationError if envelope else PermissionDenied
    if envelope and not _OUR_ENVELOPE.search(reason):
        return UnrecognisedEnvelopeFailure
    return BadRequest


def read_answer(
    raw: RawResponse,
    *,
    commands: list[str],
    secrets: Iterable[str] = (),
    credential_words: tuple[str, ...] = CREDENTIAL_WORDS,
) -> Answer:
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
        error = classify_reason(reason, envelope=True, credential_words=credential_words)
        if error is UnrecognisedEnvelopeFailure:
            reason = f"{reason} (an unrecognised reason: not taken for bad credentials)"
        raise error(f"envelope refused: {reason}", status=raw.status)
    results = body.get("results")
    if not isinstance(results, list) or len(results) != len(commands):
        count = len(results) if isinstance(results, list) else "no"
        raise ProtocolError(f"envelope of {len(commands)} commands answered with {count} results")
    for name, result in zip(commands, results, strict=True):
        if not isinstance(result, dict):
            raise ProtocolError(f"{name}: result is a {type(result).__name__}, not an object")
    return Answer(results, _text(body.get("date")), _text(body.get("time")))


def classify_envelope(
    raw: RawResponse,
    *,
    commands: list[str],
    secrets: Iterable[str] = (),
    credential_words: tuple[str, ...] = CREDENTIAL_WORDS,
    envelope_attempts: int = ENVELOPE_ATTEMPTS,
) -> Verdict:
    """The verdict of an envelope's answer: ok with the :class:`Answer`, or retry/fail.

    Every command this client sends is a read, so a busy answer to *any* command retries the
    whole envelope; a command refused for good is left in the answer for its caller. An
    unrecognised envelope failure is retried at most ``envelope_attempts`` times in all."""
    try:
        answer = read_answer(raw, commands=commands, secrets=secrets, credential_words=credential_words)
    except UnrecognisedEnvelopeFailure as exc:
        return verdict_of(exc).but(max_attempts=envelope_attempts)
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
