"""BILLmanager client: ``func=...&out=json`` calls, session or ``authinfo`` authentication.

Every call is a form POST to the panel's base URL (``.../billmgr``): the credentials (the
password at login, the session id, or ``authinfo``) travel in the body, never in a URL that
a proxy or a log would keep. The panel accepts GET and POST alike (protocols.md §4.1).

Authentication (settings ``options.auth_mode``):

- ``session`` (default): ``func=auth&username=&password=`` answers ``doc.auth.$id``; every
  later call sends ``auth=<sid>``. Sessions die after an hour without requests, or when an
  admin drops them. A call whose accepted session is refused raises :class:`SessionExpired`;
  the transport then calls :meth:`BillmanagerClient.renew_session` and retries. Calls in
  flight together may all see the same dead session: only the first renews it, the others
  retry with the new one. A login that fails is fatal.
- ``authinfo``: ``authinfo=<user>:<password>`` in every call's form body, no session.

No server-side logout: the function name for it differs between installations
(``session.delete`` needs the sid as ``elid``; it is not in every configuration) and an
unused session expires by itself within the hour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog

from etl.http.errors import AuthenticationError, BadRequest, ProtocolError, SessionExpired
from etl.http.transport import HttpTransport
from etl.settings import SourceSettings
from etl.sources.base import SourceClient
from etl.sources.billmanager.doc import document, error_for, session_id

log = structlog.get_logger(__name__)
AUTH_MODES = ("session", "authinfo")


class BillmanagerClient(SourceClient):
    """Calls panel functions as one admin login and hands back checked ``doc`` objects."""

    def __init__(self, settings: SourceSettings, transport: HttpTransport) -> None:
        super().__init__(settings, transport)
        self.auth_mode = str(settings.options.get("auth_mode", "session"))
        if self.auth_mode not in AUTH_MODES:
            raise BadRequest(f"options.auth_mode must be one of {', '.join(AUTH_MODES)}, not {self.auth_mode!r}")
        self.username = settings.secret("username")
        self._password = settings.secret("password")
        # A cheap function that needs the same login, to check authinfo credentials at open().
        self.probe_func = str(settings.options.get("probe_func", "paymethod"))
        self.logins = 0
        self._sid: str | None = None
        self._dead_sids: set[str] = set()
        self._login_lock = asyncio.Lock()
        transport.on_session_expired = self.renew_session

    async def open(self) -> None:
        """Log in (session mode) or make one cheap call (authinfo), so bad credentials fail first."""
        if self.auth_mode == "session":
            await self.renew_session()
        else:
            await self.call(self.probe_func, {"p_num": 1, "p_cnt": 1})

    async def close(self) -> None:
        """Forget the session; the panel expires it within the hour (see the module docstring)."""
        self._sid = None

    async def call(self, func: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call ``func`` and return its ``doc``; retries what is retryable, raises the rest classified."""
        return await self.transport.call(lambda: self._once(func, params or {}), what=func)

    async def renew_session(self) -> None:
        """Log in again unless another call already replaced the session that died."""
        if self.auth_mode != "session":
            return
        async with self._login_lock:
            if self._sid is not None and self._sid not in self._dead_sids:
                return
            self._sid = await self.transport.call(self._login_once, what="auth")
            self.logins += 1
            log.info("billmanager session opened", logins=self.logins)

    async def _login_once(self) -> str:
        form = {"func": "auth", "out": "json", "username": self.username, "password": self._password}
        response = await self.transport.request("POST", self.settings.base_url, data=form)
        doc = document(response, "auth")
        error = error_for(doc, "auth", session=False, secrets=self._secrets)
        if error is not None:
            raise error
        sid = session_id(doc)
        if sid is None:
            raise ProtocolError("func=auth: the answer holds no doc.auth.$id")
        return sid

    async def _once(self, func: str, params: Mapping[str, Any]) -> dict[str, Any]:
        form = {"func": func, "out": "json", **{key: str(value) for key, value in params.items()}}
        sid = None
        if self.auth_mode == "authinfo":
            form["authinfo"] = f"{self.username}:{self._password}"
        else:
            if self._sid is None:
                await self.renew_session()
            sid = self._sid
            form["auth"] = sid or ""
        response = await self.transport.request("POST", self.settings.base_url, data=form)
        doc = document(response, func)
        error = error_for(doc, func, session=sid is not None, secrets=self._secrets)
        if isinstance(error, SessionExpired) and sid is not None:
            self._dead_sids.add(sid)
        if isinstance(error, AuthenticationError) and self.auth_mode == "authinfo":
            error = AuthenticationError(f"{error} for login {self.username!r} (authinfo)")
        if error is not None:
            raise error
        return doc

    @property
    def _secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._password, self._sid) if s)
