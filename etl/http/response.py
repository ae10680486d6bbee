"""What one exchange with a server produced, as pure values: the request sent and the answer read.

No aiohttp here: classifiers, pagination and tests judge these values without a network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from etl.http.errors import ProtocolError


@dataclass(frozen=True)
class Request:
    """One HTTP request, rebuilt for every attempt (a renewed session id goes into the next one)."""

    method: str
    url: str
    params: Mapping[str, Any] | None = None
    data: Any = None
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """The URL without its query string, safe to show."""
        return self.url.split("?", 1)[0]


class NotJson(ValueError):
    """The body is not JSON (an HTML error page, a login form, plain text, nothing)."""


@dataclass(frozen=True)
class RawResponse:
    """A fully read HTTP response."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.header("Content-Type").split(";")[0].strip().lower()

    def header(self, name: str) -> str:
        """A header's value, matched without regard to case ("" when absent)."""
        if name in self.headers:
            return self.headers[name]
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), "")

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def snippet(self, length: int = 80) -> str:
        """The start of the body on one line, for messages."""
        return " ".join(self.text()[:length].split())

    def json(self) -> Any:
        """The body as JSON; :class:`NotJson` when it is something else, and
        :class:`~etl.http.errors.ProtocolError` (not retried: the server would send it again) when it
        is JSON nested deeper than the parsers go.

        orjson refuses lone surrogates ("\\ud800") and invalid UTF-8 that Python's parser can be made
        to keep (as lone surrogates): the records holding them must reach staging and be rejected
        one by one, rather than failing their whole page or envelope."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            pass
        try:
            return json.loads(self.body.decode("utf-8", errors="surrogateescape"))
        except RecursionError:
            raise ProtocolError(f"HTTP {self.status}: JSON nested deeper than the parser's recursion limit") from None
        except ValueError:
            raise NotJson(
                f"expected JSON, got HTTP {self.status} {self.content_type or 'no content type'}: {self.snippet()!r}"
            ) from None

    def json_or_none(self) -> Any:
        """The body as JSON, or ``None`` when it is not JSON."""
        try:
            return self.json()
        except NotJson:
            return None
