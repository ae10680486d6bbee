"""BILLmanager client: ``func=...&out=json`` calls, session or ``authinfo`` authentication.

Every call is a form POST to the panel's base URL (``.../billmgr``): the credentials (the
password at login, the session id, or ``authinfo``) travel in the body, never in a URL that
a proxy or a log would keep. The panel accepts GET and POST alike (protocols.md §4.1).

Authentication (settings ``options.auth_mode``):

- ``session`` (default): ``func=auth&username=&password=`` answers ``doc.auth.$id``; every
  later call sends ``auth=<sid>``. Sessions die after an hour without requests, or when an
  admin drops them. A call whose accepted session is refused gets a *renew* verdict; the
  transport's retry policy then calls :meth:`BillmanagerClient.renew_session` and retries.
  Calls in flight together may all see the same dead session: only the first renews it,
  the others retry with the new one. A login that fails is fatal.
- ``authinfo``: ``authinfo=<user>:<password>`` in every call's form body, no session.

No server-side logout: the function name for it differs between installations
(``session.delete`` needs the sid as ``elid``; it is not in every configuration) and an
unused session expires by itself within the hour.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from etl.http.errors import ProtocolError
from etl.http.response import Request
from etl.settings import SourceSettings
from etl.sources.base import SourceClient
from etl.sources.billmanager.config import BillmanagerCredentials, BillmanagerOptions
from etl.sources.billmanager.doc import classify_doc, session_id

if TYPE_CHECKING:
    from etl.http.transport import HttpTransport

log = structlog.get_logger(__name__)


class BillmanagerClient(SourceClient):
    """Calls panel functions as one admin login and hands back checked ``doc`` objects."""

    def __init__(self, settings: SourceSettings, transport: HttpTransport) -> None:
        super().__init__(settings, transport)
        credentials: BillmanagerCredentials = settings.credentials
        self.options: BillmanagerOptions = settings.options
        self.auth_mode = self.options.auth_mode
        self.username = credentials.username
        self._password = credentials.password.get_secret_value()
        self.logins = 0
        self._sid: str | None = None
        self._login_lock = asyncio.Lock()

    async def open(self) -> None:
        """Log in (session mode) or make one cheap call (authinfo), so bad credentials fail first."""
        if self.auth_mode == "session":
            await self.renew_session(dead=None)
        else:
            await self.call(self.options.probe_func, {"p_num": 1, "p_cnt": 1})

    async def close(self) -> None:
        """Forget the session; the panel expires it within the hour (see the module docstring)."""
        self._sid = None

    async def call(self, func: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call ``func`` and return its ``doc``; every panel read is safe to repeat."""
        form = {"func": func, "out": "json", **{key: str(value) for key, value in (params or {}).items()}}
        sent_with: list[str | None] = [None]

        def build() -> Request:
            if self.auth_mode == "authinfo":
                return Request("POST", self.settings.base_url, data={**form, "authinfo": self._authinfo})
            sent_with[0] = self._sid
            return Request("POST", self.settings.base_url, data={**form, "auth": self._sid or ""})

        async def renew() -> None:
            await self.renew_session(dead=sent_with[0])

        classify = functools.partial(
            classify_doc,
            func=func,
            session=self.auth_mode == "session",
            secrets=self._secrets,
            authinfo_login=self.username if self.auth_mode == "authinfo" else "",
        )
        return await self.transport.call(build, classify, what=func, safe=True, renew=renew)

    async def renew_session(self, dead: str | None) -> None:
        """Log in again, unless another call already replaced the session ``dead`` that died."""
        if self.auth_mode != "session":
            return
        async with self._login_lock:
            if self._sid is not None and self._sid != dead:
                return
            form = {"func": "auth", "out": "json", "username": self.username, "password": self._password}
            classify = functools.partial(classify_doc, func="auth", session=False, secrets=self._secrets)
            doc = await self.transport.call(
                Request("POST", self.settings.base_url, data=form), classify, what="auth", safe=True
            )
            sid = session_id(doc)
            if sid is None:
                raise ProtocolError("func=auth: the answer holds no doc.auth.$id")
            self._sid = sid
            self.logins += 1
            log.info("billmanager session opened", logins=self.logins)

    @property
    def _authinfo(self) -> str:
        return f"{self.username}:{self._password}"

    @property
    def _secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._password, self._sid) if s)
