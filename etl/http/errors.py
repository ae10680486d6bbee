"""One exception tree for talking to billing systems, one verdict type, one table from HTTP status to verdict.

::

    SourceError                      anything that went wrong talking to a source
    ├── RetryableError               worth another attempt after a pause
    │   ├── TransportError           connection refused/reset, timeout, truncated body
    │   ├── ServerError              HTTP 5xx from the server or a proxy
    │   ├── RateLimited              HTTP 429 (a proxy; none of the four systems limits itself)
    │   ├── ProxyPageError           HTML/plain text where the protocol promises JSON
    │   ├── SessionExpired           the session is gone: renew it, then retry
    │   └── SourceBusy               MikroBILL / Microbizz "busy" answers
    ├── OutcomeUnknown               a call not safe to repeat was sent and got no answer:
    │                                the caller looks the object up before doing anything else
    └── FatalError                   retrying cannot help
        ├── AuthenticationError      bad or revoked credentials: the source ends
        ├── PermissionDenied         the account lacks a right: that stream ends
        ├── BadRequest               the request itself is wrong (unknown command, missing path)
        ├── ProtocolError            an answer we cannot make sense of
        │   ├── Redirected           a 3xx other than 304: never followed to another origin
        │   │                        (it would carry the credentials there); names the Location
        │   └── ResponseTooLarge     a body over max_response_bytes once decoded
        └── ConfigurationError       the settings cannot work (a base URL reaching a web page,
                                     credentials the transport needs missing): the source ends

A client never decides to retry: it hands the transport a *classifier*, a pure function
from a read response to a :class:`Verdict`, and :mod:`etl.http.retry` acts on verdicts
alone. :func:`status_verdict` is the common table; each protocol adds what its bodies say.
Messages carry no secrets: they are built from status, path and the server's reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

Action = Literal["ok", "retry", "renew", "fail", "ignore"]


class SourceError(Exception):
    """A failure talking to one source; ``kind`` is a short stable label for counts and logs."""

    kind = "source_error"

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RetryableError(SourceError):
    kind = "retryable"


class TransportError(RetryableError):
    kind = "transport"


class ServerError(RetryableError):
    kind = "server_error"


class RateLimited(RetryableError):
    kind = "rate_limited"


class ProxyPageError(RetryableError):
    kind = "proxy_page"


class SessionExpired(RetryableError):
    kind = "session_expired"


class SourceBusy(RetryableError):
    kind = "busy"


class OutcomeUnknown(SourceError):
    """A call that must not be repeated blindly was sent, and no answer says what the server did."""

    kind = "outcome_unknown"


class FatalError(SourceError):
    kind = "fatal"


class AuthenticationError(FatalError):
    kind = "authentication"


class PermissionDenied(FatalError):
    kind = "permission"


class BadRequest(FatalError):
    kind = "bad_request"


class ProtocolError(FatalError):
    kind = "protocol"


class Redirected(ProtocolError):
    """The server answered a redirect the transport does not follow; the message names its target."""

    kind = "redirect"


class ResponseTooLarge(ProtocolError):
    """A body longer than the source's ``max_response_bytes``, counted after decompression."""

    kind = "response_too_large"


class ConfigurationError(FatalError):
    """The source's settings cannot work; the message names the setting and the likely fix."""

    kind = "configuration"


@dataclass(frozen=True)
class Verdict:
    """What one attempt's answer means.

    - ``ok``: done, ``value`` is the result; ``ignore``: done, nothing to act on (``value`` is None).
    - ``retry``: try again after a pause; when attempts run out, raise ``error`` (or, with
      ``accept_when_exhausted``, return ``value``: a "no rows" answer confirmed enough times).
    - ``renew``: renew the session (the client's renew method), then try again at once.
    - ``fail``: raise ``error`` now.

    ``without_effect`` says the server refused the call without acting on it (429, 503 with
    Retry-After, a busy code, a refused session, a connection never made), so even a call that
    is not safe to repeat may be sent again. ``max_attempts`` caps attempts for this verdict
    below the policy's own limit (e.g. how often a 401 is confirmed).
    """

    action: Action
    value: Any = None
    error: type[SourceError] = SourceError
    message: str = ""
    status: int | None = None
    retry_after: float | None = None
    without_effect: bool = False
    max_attempts: int | None = None
    accept_when_exhausted: bool = False

    @property
    def kind(self) -> str:
        return self.error.kind

    def exception(self, suffix: str = "") -> SourceError:
        """The error this verdict stands for."""
        return self.error(self.message + suffix, status=self.status, retry_after=self.retry_after)

    def but(self, **changes: Any) -> Verdict:
        """A copy with some fields changed."""
        return replace(self, **changes)


def ok(value: Any = None) -> Verdict:
    return Verdict("ok", value)


def fail(error: type[SourceError], message: str, *, status: int | None = None) -> Verdict:
    return Verdict("fail", error=error, message=message, status=status)


def retry(error: type[SourceError], message: str, **fields: Any) -> Verdict:
    return Verdict("retry", error=error, message=message, **fields)


def renew(message: str, *, error: type[SourceError] = SessionExpired) -> Verdict:
    return Verdict("renew", error=error, message=message, without_effect=True)


# HTTP status -> what it means. Statuses not listed: 2xx/304 ok, other 3xx fail as Redirected (the
# transport turns them into a verdict naming the Location before any classifier sees them), other
# 4xx fail as BadRequest, other 5xx retry as ServerError.
STATUS_TABLE: dict[int, tuple[Action, type[SourceError]]] = {
    400: ("fail", BadRequest),
    401: ("fail", AuthenticationError),
    403: ("fail", PermissionDenied),
    404: ("fail", BadRequest),
    405: ("fail", BadRequest),
    408: ("retry", TransportError),
    429: ("retry", RateLimited),
    501: ("fail", BadRequest),
}


def refused_without_effect(error: type[SourceError], status: int | None, retry_after: float | None) -> bool:
    """Whether a retryable answer says the server turned the call away before acting on it: a busy
    answer, a rate limit, or a 503 that says when to come back (Retry-After). A timeout, a reset or
    any other 5xx may have come half-way through."""
    return issubclass(error, SourceBusy | RateLimited) or (status == 503 and retry_after is not None)


def status_verdict(status: int, message: str, *, retry_after: float | None = None) -> Verdict:
    """What an HTTP status means before the protocol looks at the body."""
    if 200 <= status < 300 or status == 304:
        return ok()
    action, error = STATUS_TABLE.get(status, _unlisted(status))
    return Verdict(
        action,
        error=error,
        message=message,
        status=status,
        retry_after=retry_after,
        without_effect=refused_without_effect(error, status, retry_after),
    )


def _unlisted(status: int) -> tuple[Action, type[SourceError]]:
    if status >= 500:
        return "retry", ServerError
    return "fail", Redirected if 300 <= status < 400 else BadRequest


def error_from_status(status: int, message: str, *, retry_after: float | None = None) -> SourceError:
    """The exception an HTTP failure status stands for; a status that is no failure by itself (a 304
    where the protocol has no use for one) is a :class:`ProtocolError`."""
    verdict = status_verdict(status, message, retry_after=retry_after)
    if verdict.action == "ok":
        return ProtocolError(message or f"HTTP {status}", status=status)
    return verdict.exception()


def verdict_of(error: SourceError) -> Verdict:
    """The verdict an already classified error stands for (for protocols whose pure readers raise);
    an expired session is renewed rather than waited out."""
    if isinstance(error, SessionExpired):
        return renew(str(error), error=type(error))
    return Verdict(
        "retry" if isinstance(error, RetryableError) else "fail",
        error=type(error),
        message=str(error),
        status=error.status,
        retry_after=error.retry_after,
        without_effect=refused_without_effect(type(error), error.status, error.retry_after),
    )
