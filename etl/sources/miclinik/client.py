"""miclinik (Dolibarr REST) client: DOLAPIKEY auth, error bodies, list semantics across versions.

Dolibarr answers errors as ``{"error": {"code", "message": "<Reason>: <text>", "0": detail}}``
with the HTTP status equal to ``code``. Lists that are empty answer ``[]`` on NEW servers
and 404 "No <x> found" on OLD ones (thirdparties always 404); both mean "no rows". Some
failures are not JSON at all: a disabled API module (HTTP 200 text), an IP filter (503 text),
an unknown endpoint (501 text) — and the proxies in front add their own HTML pages.

The key travels only in the ``DOLAPIKEY`` header, never in a URL (query strings end up in
proxy logs). A 401 is confirmed a few times before it is called fatal: Dolibarr answers a
bad key after a 1 s sleep, and a key check can fail briefly while the database is restarting.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from etl.http.errors import (
    AuthenticationError,
    BadRequest,
    PermissionDenied,
    ProtocolError,
    ProxyPageError,
    RetryableError,
    SourceError,
    classify_status,
    parse_retry_after,
)
from etl.http.transport import HttpTransport, RawResponse
from etl.settings import SourceSettings
from etl.sources.base import SourceClient
from etl.sources.rawjson import split_array

EMPTY_LIST_404 = ("No ", "not found")


class MiclinikClient(SourceClient):
    """Reads lists and objects from one Dolibarr-compatible server."""

    def __init__(self, settings: SourceSettings, transport: HttpTransport) -> None:
        super().__init__(settings, transport)
        self.api_key = settings.secret("api_key")
        self.auth_confirmations = int(settings.options.get("auth_confirmations", 6))
        self.server_now: datetime | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"DOLAPIKEY": self.api_key, "Accept": "application/json"}

    async def open(self) -> None:
        """Check the key and read the server clock (GET /status), which incremental scans start from."""
        body = await self.get_json("status")
        success = body.get("success", {}) if isinstance(body, dict) else {}
        stamp = success.get("timestamp_now_utc")
        self.server_now = datetime.fromtimestamp(int(stamp), UTC) if stamp else datetime.now(UTC)

    async def get_json(self, resource: str, params: dict[str, Any] | None = None) -> Any:
        """GET one resource and return its JSON; raises classified errors."""
        return await self.transport.call(lambda: self._get_once(resource, params, list_call=False), what=resource)

    async def get_list_answer(self, resource: str, params: dict[str, Any]) -> tuple[list[Any], bool]:
        """GET a list, and whether it came as a 404 "No ... found" (OLD servers, and thirdparties
        always) rather than as ``[]``; both mean no rows."""
        body = await self.transport.call(lambda: self._get_once(resource, params, list_call=True), what=resource)
        if body is None:
            return [], True
        return self._records(resource, body), False

    @staticmethod
    def _records(resource: str, body: Any) -> list[Any]:
        if isinstance(body, dict) and isinstance(body.get("data"), list):  # pagination_data=true
            return body["data"]
        if not isinstance(body, list):
            raise ProtocolError(f"GET {resource}: expected a JSON list, got {type(body).__name__}")
        return body

    async def _get_once(self, resource: str, params: dict[str, Any] | None, *, list_call: bool) -> Any:
        url = f"{self.settings.base_url}/{resource}"
        for confirmation in range(self.auth_confirmations):
            response = await self.transport.request("GET", url, params=params or {}, headers=self.headers)
            if response.status != 401:
                break
            await asyncio.sleep(min(2.0**confirmation, 10.0) * self.settings.backoff_initial)
        return interpret(response, resource, list_call=list_call)


def interpret(response: RawResponse, resource: str, *, list_call: bool) -> Any:
    """Pure: a read response to its JSON value, ``None`` for an empty list, or a classified error.

    A list answer comes back as :class:`~etl.sources.rawjson.RawJson` records, undecoded."""
    verdict = classify_status(response.status)
    if verdict.action == "ok":
        if response.status == 304 or not response.body:
            return None
        if list_call:
            with contextlib.suppress(ValueError):  # not a bare array: judged as JSON below
                return split_array(response.body)
        body = response.json()  # a 200 text page (API module disabled) raises ProxyPageError here
        if isinstance(body, dict) and "error" in body and isinstance(body["error"], dict):
            raise ProtocolError(f"GET {resource}: HTTP 200 with an error body: {error_message(body)}")
        return body
    if response.status == 404 and list_call:
        message = error_message(_json_or_none(response))
        if message and any(marker in message for marker in EMPTY_LIST_404):
            return None
    raise error_for(response, resource)


def error_for(response: RawResponse, resource: str) -> SourceError:
    """The classified exception for a non-success answer, with the server's reason (never our key)."""
    verdict = classify_status(response.status)
    body = _json_or_none(response)
    if verdict.action == "retry":
        # 5xx/429 with an HTML page is the proxy talking; with a JSON body it is Dolibarr (e.g. a DB error).
        error_class = verdict.error if body is not None or response.status == 429 else ProxyPageError
        return (error_class or RetryableError)(
            f"GET {resource}: HTTP {response.status}: {error_message(body) or response.content_type}",
            status=response.status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    message = error_message(body) or " ".join(response.text()[:120].split())
    error_class = verdict.error or BadRequest
    if response.status == 401:
        error_class = AuthenticationError
    elif response.status == 403:
        error_class = PermissionDenied
    return error_class(f"GET {resource}: HTTP {response.status}: {message}", status=response.status)


def error_message(body: Any) -> str:
    """``error.message`` plus numbered details ("0", "1", …) of a Restler error body."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return ""
    error = body["error"]
    details = [str(error[k]) for k in sorted(error, key=str) if str(k).isdigit()]
    return "; ".join([str(error.get("message", "")), *details]).strip("; ")


def _json_or_none(response: RawResponse) -> Any:
    try:
        return response.json()
    except ProxyPageError:
        return None
