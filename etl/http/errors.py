"""One exception tree for talking to billing systems, and one table that classifies failures.

::

    SourceError                      anything that went wrong talking to a source
    ├── RetryableError               worth another attempt after a pause
    │   ├── TransportError           connection refused/reset, timeout, truncated body
    │   ├── ServerError              HTTP 5xx from the server or a proxy
    │   ├── RateLimited              HTTP 429 (a proxy; none of the four systems limits itself)
    │   ├── ProxyPageError           HTML/plain text where the protocol promises JSON
    │   ├── SessionExpired           BILLmanager session gone: log in again, then retry
    │   └── SourceBusy               MikroBILL / Microbizz "busy" answers
    └── FatalError                   retrying cannot help; the source's run ends
        ├── AuthenticationError      bad or revoked credentials
        ├── PermissionDenied         the account lacks a right
        ├── BadRequest               the request itself is wrong
        └── ProtocolError            an answer we cannot make sense of

Retry code reads only :func:`classify_status` / the exception class, never message text.
Messages carry no secrets: clients build them from status, path and the server's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal["ok", "retry", "fail"]


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


@dataclass(frozen=True)
class Classification:
    action: Action
    error: type[SourceError] | None = None


# HTTP status -> what to do. Statuses not listed: 2xx/304 ok, other 4xx fatal, other 5xx retry.
STATUS_TABLE: dict[int, Classification] = {
    401: Classification("fail", AuthenticationError),
    403: Classification("fail", PermissionDenied),
    400: Classification("fail", BadRequest),
    405: Classification("fail", BadRequest),
    408: Classification("retry", TransportError),
    429: Classification("retry", RateLimited),
    501: Classification("fail", BadRequest),
}


def classify_status(status: int) -> Classification:
    """What an HTTP status means before the protocol looks at the body."""
    if status in STATUS_TABLE:
        return STATUS_TABLE[status]
    if 200 <= status < 300 or status == 304:
        return Classification("ok")
    if status >= 500:
        return Classification("retry", ServerError)
    return Classification("fail", BadRequest)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; HTTP dates are rare behind proxies)."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            from datetime import UTC, datetime

            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None
