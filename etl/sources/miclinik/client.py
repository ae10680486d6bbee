"""miclinik (Dolibarr REST) client: ``DOLAPIKEY`` auth, reads, and creates for write-back.

The key travels only in the ``DOLAPIKEY`` header, never in a URL (query strings end up in
proxy logs). With ``login`` + ``password`` instead of a key, :meth:`MiclinikClient.open`
first asks ``POST /login`` for the login's token (JSON body, protocols.md §1.1; without
``reset`` the server hands back the token it has, so asking is safe to repeat) and uses it
as the key from then on. What each answer means is decided in
:mod:`etl.sources.miclinik.answers`; retries by the transport's policy.

:meth:`MiclinikClient.open` reads ``GET /status``: it proves the key, the base URL (one without
``/api/index.php`` answers the web login page with status 200, protocols.md §1.9: a
configuration error naming the fix) and gives the server clock incremental scans start from.
A production server (``$dolibarr_main_prod=1``) leaves ``timestamp_now_utc`` out; the local
clock stands in, and the log says so once.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from etl.http.response import Request
from etl.settings import SourceSettings
from etl.sources.base import SourceClient
from etl.sources.miclinik.answers import (
    Listing,
    MisconfiguredBaseUrl,
    classify_create,
    classify_login,
    classify_read,
)
from etl.sources.miclinik.config import MiclinikCredentials, MiclinikOptions

if TYPE_CHECKING:
    from etl.http.transport import HttpTransport

log = structlog.get_logger(__name__)
API_PATH = "/api/index.php"


class MiclinikClient(SourceClient):
    """Reads lists and objects from one Dolibarr-compatible server."""

    def __init__(self, settings: SourceSettings, transport: HttpTransport) -> None:
        super().__init__(settings, transport)
        self.credentials: MiclinikCredentials = settings.credentials
        self.options: MiclinikOptions = settings.options
        key = self.credentials.api_key
        self.api_key = key.get_secret_value() if key else ""
        self.server_now: datetime | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"DOLAPIKEY": self.api_key, "Accept": "application/json"}

    async def open(self) -> None:
        """Get a token if configured with a login, check the key and read the server clock
        (``GET /status``), which incremental scans start from."""
        if not self.api_key:
            self.api_key = await self.login()
        try:
            body = await self.get_json("status", at_open=True)
        except MisconfiguredBaseUrl as exc:
            raise MisconfiguredBaseUrl(f"{exc} ({self._base_url_advice()})", status=exc.status) from None
        success = body.get("success", {}) if isinstance(body, dict) else {}
        stamp = success.get("timestamp_now_utc") if isinstance(success, dict) else None
        self.server_now = server_clock(stamp)
        if self.server_now is None:
            # Full scans need no clock; incremental ones start from the local clock minus the
            # overlap, as with a server that hides its clock ($dolibarr_main_prod=1).
            log.warning(
                "server clock unknown: GET status has no usable timestamp_now_utc; "
                "the local clock is used for the watermark",
                timestamp_now_utc=str(stamp)[:40] if stamp not in (None, "") else None,
                base_url=self.settings.base_url,
            )
            self.server_now = datetime.now(UTC)

    def _base_url_advice(self) -> str:
        base = self.settings.base_url.rstrip("/")
        said = f"base_url {base} answers a web page, not the REST API"
        if base.endswith(API_PATH):
            return f"{said}: is the API module enabled?"
        return f"{said}: it should end in {API_PATH}, e.g. {base}{API_PATH}"

    async def login(self) -> str:
        """The login's API token from ``POST /login``."""
        password = self.credentials.password
        body = {"login": self.credentials.login, "password": password.get_secret_value() if password else ""}
        request = Request("POST", f"{self.settings.base_url}/login", json=body, headers={"Accept": "application/json"})
        return await self.transport.call(request, classify_login, what="POST login", safe=True)

    async def get_json(self, resource: str, params: dict[str, Any] | None = None, *, at_open: bool = False) -> Any:
        """GET one resource and return its JSON (``at_open``: a web page means a wrong base URL)."""
        classify = functools.partial(
            classify_read,
            what=f"GET {resource}",
            list_call=False,
            auth_confirmations=self.options.auth_confirmations,
            web_page_is_misconfiguration=at_open,
        )
        return await self.transport.call(self._get(resource, params), classify, what=resource, safe=True)

    async def get_list(self, resource: str, params: dict[str, Any], *, confirm_empty: bool = False) -> list[Any]:
        """GET a list as raw records; a 404 "No ... found" is no rows (confirmed when asked)."""
        return (await self.get_listing(resource, params, confirm_empty=confirm_empty)).records

    async def get_listing(self, resource: str, params: dict[str, Any], *, confirm_empty: bool = False) -> Listing:
        """GET a list: raw records and, for ``pagination_data=true`` on a NEW server, the server's count."""
        classify = functools.partial(
            classify_read,
            what=f"GET {resource}",
            list_call=True,
            confirm_empty=self.options.confirm_empty_pages if confirm_empty else 0,
            auth_confirmations=self.options.auth_confirmations,
        )
        return await self.transport.call(self._get(resource, params), classify, what=resource, safe=True)

    async def create(self, resource: str, body: dict[str, Any]) -> int:
        """``POST /<resource>``: the new object's id. Not safe to repeat: after a timeout it raises
        :class:`~etl.http.errors.OutcomeUnknown`, and the caller looks the object up by its ref."""
        request = Request(
            "POST",
            f"{self.settings.base_url}/{resource}",
            json=body,
            headers={**self.headers, "Content-Type": "application/json"},
        )
        classify = functools.partial(classify_create, what=f"POST {resource}")
        return await self.transport.call(request, classify, what=f"POST {resource}", safe=False)

    def _get(self, resource: str, params: dict[str, Any] | None) -> Request:
        return Request("GET", f"{self.settings.base_url}/{resource}", params=params or {}, headers=self.headers)


# A server clock before this is a bad answer, not a time (a zero, a negative). One more than a day
# ahead of ours is refused too: the watermark taken from it would skip every change until then.
EARLIEST_CLOCK = datetime(2000, 1, 1, tzinfo=UTC)
MOST_AHEAD = timedelta(days=1)


def server_clock(stamp: object, now: datetime | None = None) -> datetime | None:
    """``timestamp_now_utc`` of ``GET /status`` as an aware time, or None when absent or unusable."""
    if isinstance(stamp, bool) or not isinstance(stamp, int | float | str):
        return None
    try:
        moment = datetime.fromtimestamp(int(stamp), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return moment if EARLIEST_CLOCK <= moment <= (now or datetime.now(UTC)) + MOST_AHEAD else None
