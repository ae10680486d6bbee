"""The seam between the MikroBILL client and the wire: ``Process(path, args)`` and ``Close()``.

MikroBILL's own client libraries (``apicore.php``, ``mikrobill-api.py``) speak an
undocumented, encrypted protocol to the core; only ``Process``/``Close`` are
documented (protocols.md §2.1). So the client talks to a :class:`MikrobillTransport`
and never to sockets, and ``settings.options["transport"]`` chooses one:

- ``"http-json"`` (default): :class:`HttpJsonTransport`, the HTTP JSON stand-in the
  simulator serves (``POST /connect``, ``/process``, ``/close``; protocols.md §5.2),
  through the source's :class:`~etl.http.transport.HttpTransport`.
- ``"python:<module>:<Class>"`` or ``"python:/path/to/mikrobill-api.py:<Class>"``:
  :class:`VendorClassTransport`. **This is where a deployment plugs in the vendor's
  ``mikrobill-api.py``**: the class is built as the manual builds it,
  ``Class(host, port, login, password, crypto_key_1, crypto_key_2)`` (the two keys only
  when given: ``options.apicore = "cash-desk"`` needs none), and its blocking
  ``Process``/``Close`` run in a worker thread. Host and port come from
  ``options["host"]``/``options["port"]``, else from ``base_url`` (default port 7402,
  the core's admin port; that the API shares it is [I]).

A transport makes exactly one attempt per call and returns its verdict: ``ok`` with
what ``Process`` returned (an envelope, or a list of them for a batch), or what went
wrong on the way. Judging codes belongs to the client, repeating to the source's
retry policy (:mod:`etl.http.retry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from aiolimiter import AsyncLimiter

from etl.http.errors import (
    AuthenticationError,
    FatalError,
    ProtocolError,
    ProxyPageError,
    SourceError,
    TransportError,
    Verdict,
    fail,
    ok,
    retry,
    status_verdict,
)
from etl.http.response import NotJson, RawResponse, Request
from etl.http.retry import parse_retry_after
from etl.redaction import mask_values
from etl.settings import SourceSettings
from etl.sources.mikrobill.codes import CodeTable
from etl.sources.mikrobill.config import MikrobillCredentials, MikrobillOptions

if TYPE_CHECKING:
    from etl.http.transport import HttpTransport

SESSION_HEADER = "X-MikroBILL-Session"
DEFAULT_CORE_PORT = 7402


class MikrobillTransport(Protocol):
    """What the client needs from a MikroBILL connection; one attempt per call, answered as a verdict."""

    async def connect(self) -> Verdict:
        """``new MikroBILL_API(host, port, login, password, key1, key2)``: open a session."""
        ...

    async def process(self, path: str, args: object | None = None) -> Verdict:
        """``$Api->Process(path, args)``: ``ok`` with an envelope, or a list of them for a batch."""
        ...

    async def close(self) -> None:
        """``$Api->Close()``."""
        ...


def credential_values(settings: SourceSettings) -> list[str]:
    """login, password[, crypto_key_1, crypto_key_2]: the constructor's arguments, in order.

    The keys are left out when none is given (``apicore`` on the cash desk's own server)."""
    credentials: MikrobillCredentials = settings.credentials
    keys = credentials.crypto_keys()
    return [credentials.login, credentials.password.get_secret_value(), *(keys or ())]


class HttpJsonTransport:
    """The simulator's HTTP JSON stand-in for the vendor protocol (protocols.md §5.2)."""

    def __init__(self, http: HttpTransport, settings: SourceSettings, codes: CodeTable) -> None:
        self.http, self.settings, self.codes = http, settings, codes
        self.secrets = settings.secret_values()
        self._token = ""

    async def connect(self) -> Verdict:
        """``new MikroBILL_API(...)``: send the cashier and the CRYPTO keys, keep the session token."""
        self._token = ""  # a failed connect must not leave the old token in use
        values = credential_values(self.settings)
        names = ("login", "password", "crypto_key_1", "crypto_key_2")
        body: dict[str, str | None] = dict.fromkeys(names)  # keys not given travel as null
        body.update(zip(names, values, strict=False))
        attempt = self.http.exchange(Request("POST", f"{self.settings.base_url}/connect", json=body), self._decode)
        verdict = await attempt()
        if verdict.action != "ok":
            return verdict
        verdict = self.codes.verdict(verdict.value, "connect")
        if verdict.action == "renew":  # "not connected" in answer to connecting: the login was refused
            return fail(AuthenticationError, verdict.message)
        if verdict.action != "ok":
            return verdict
        if not isinstance(verdict.value, str) or not verdict.value:
            return fail(ProtocolError, "connect: the core answered code 0 without a session token")
        self._token = verdict.value
        return ok()

    async def process(self, path: str, args: object | None = None) -> Verdict:
        """One ``POST /process``."""
        request = Request(
            "POST",
            f"{self.settings.base_url}/process",
            json={"path": path, "args": args},
            headers={SESSION_HEADER: self._token},
        )
        return await self.http.exchange(request, self._decode)()

    async def close(self) -> None:
        """``POST /close``; a core that cannot be reached to say goodbye is not an error."""
        if not self._token:
            return
        request = Request("POST", f"{self.settings.base_url}/close", headers={SESSION_HEADER: self._token})
        with contextlib.suppress(SourceError):
            await self.http.exchange(request, self._decode)()
        self._token = ""

    def _decode(self, raw: RawResponse) -> Verdict:
        if raw.status == 304:  # no envelope at all: never taken for an empty answer
            return fail(ProtocolError, "MikroBILL: HTTP 304 Not Modified where an envelope is due", status=304)
        if 200 <= raw.status < 300:
            try:
                return ok(raw.json())
            except NotJson as exc:
                return retry(ProxyPageError, f"MikroBILL: {exc}", status=raw.status)
        reason = _envelope_reason(raw)
        message = f"HTTP {raw.status}" + (f": {mask_values(reason, self.secrets)}" if reason else "")
        return status_verdict(raw.status, message, retry_after=parse_retry_after(raw.header("Retry-After")))


def _envelope_reason(raw: RawResponse) -> str:
    body = raw.json_or_none()
    reason = body.get("return") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) else ""


class VendorClassTransport:
    """The vendor's blocking Python class (``mikrobill-api.py``) behind the async seam.

    One instance is one connection; the class is not documented as thread-safe, so
    calls are serialised. ``Process`` may return the envelope as a value or as JSON
    text; both are accepted. Network failures (``OSError``, timeouts) are retryable;
    any other exception while connecting is taken for a refusal (bad cashier or keys:
    fatal), and while processing for a protocol error.
    """

    def __init__(self, factory: Callable[[], Any], settings: SourceSettings, codes: CodeTable) -> None:
        self._factory, self.settings, self.codes = factory, settings, codes
        self.secrets = settings.secret_values()
        self._api: Any = None
        self._lock = asyncio.Lock()
        # HttpTransport's limiter never sees these calls, so the source's rate limit is kept here.
        self._limiter = AsyncLimiter(settings.rate_limit, 1.0)

    async def connect(self) -> Verdict:
        """Construct the vendor class, which connects in its constructor as ``new MikroBILL_API`` does."""
        await self.close()
        try:
            self._api = await asyncio.to_thread(self._factory)
        except Exception as exc:
            return self._failure(exc, "connect", AuthenticationError)
        return ok()

    async def process(self, path: str, args: object | None = None) -> Verdict:
        """``api.Process(path[, args])`` in a worker thread."""
        if self._api is None:
            connected = await self.connect()
            if connected.action != "ok":
                return connected
        method = _method(self._api, "Process")
        call_args = (path,) if args is None else (path, args)
        async with self._lock:
            await self._limiter.acquire()
            try:
                result = await asyncio.to_thread(method, *call_args)
            except Exception as exc:
                return self._failure(exc, path, ProtocolError)
        if isinstance(result, bytes | str):
            try:
                return ok(json.loads(result))
            except ValueError:
                return fail(ProtocolError, f"{path}: the vendor class returned text that is not JSON")
        return ok(result)

    async def close(self) -> None:
        """``api.Close()``; failures while closing are ignored."""
        api, self._api = self._api, None
        if api is None:
            return
        # Closing must never fail a run whose data is already staged.
        with contextlib.suppress(Exception):
            await asyncio.to_thread(_method(api, "Close"))

    def _failure(self, exc: Exception, what: str, otherwise: type[SourceError]) -> Verdict:
        detail = mask_values(f"{type(exc).__name__}: {exc}", self.secrets)
        if isinstance(exc, OSError | TimeoutError):
            return retry(TransportError, f"{what}: {detail}")
        code = getattr(exc, "code", None)
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            return self.codes.verdict({"code": code, "return": detail}, what)
        return fail(otherwise, f"{what}: vendor class raised {detail}")


def _method(api: Any, name: str) -> Callable[..., Any]:
    method = getattr(api, name, None) or getattr(api, name.lower(), None)
    if method is None:
        raise ProtocolError(f"the vendor class has no {name}() method")
    return method


def load_vendor_class(spec: str) -> type:
    """``"<module>:<Class>"`` or ``"<file.py>:<Class>"`` -> the class (the vendor file has a hyphen in its name)."""
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise FatalError(f"options.transport must look like python:<module>:<Class>, not python:{spec}")
    try:
        if where.endswith(".py"):
            module_spec = importlib.util.spec_from_file_location(f"mikrobill_vendor_{Path(where).stem}", where)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(where)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except (ImportError, OSError, SyntaxError) as exc:
        raise FatalError(f"cannot load the MikroBILL vendor class from {where}: {type(exc).__name__}") from None
    found = getattr(module, name, None)
    if not isinstance(found, type):
        raise FatalError(f"{where} has no class {name}")
    return found


def vendor_address(settings: SourceSettings) -> tuple[str, int]:
    """Host and port for the vendor class: options first, else ``base_url``."""
    options: MikrobillOptions = settings.options
    url = urlsplit(settings.base_url)
    return options.host or url.hostname or "", options.port or url.port or DEFAULT_CORE_PORT


def make_transport(http: HttpTransport, settings: SourceSettings, codes: CodeTable) -> MikrobillTransport:
    """The (not yet connected) transport ``options.transport`` names; call its ``connect()`` next."""
    choice = settings.options.transport
    if choice == "http-json":
        return HttpJsonTransport(http, settings, codes)
    vendor = load_vendor_class(choice.removeprefix("python:"))
    host, port = vendor_address(settings)
    arguments = credential_values(settings)
    return VendorClassTransport(lambda: vendor(host, port, *arguments), settings, codes)
