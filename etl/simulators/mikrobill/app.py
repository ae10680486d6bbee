"""HTTP face of the simulated MikroBILL core: connect, Process, close.

``POST /connect`` checks the cashier in the order the core must (it cannot read a
login it cannot decrypt): CRYPTO keys, then password, then the "may use
MikroBILL_API" right, then trusted IPs, then allowed days and hours.
``POST /process`` needs the session token in ``X-MikroBILL-Session`` and answers
with exactly what ``Process`` returns. Envelope failures travel with HTTP 200,
as the real client library hands them back as values; only a body that is not
JSON gets HTTP 400 (with the same envelope shape).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from etl.simulators.faults import FaultPlan
from etl.simulators.mikrobill.options import Code, MikrobillOptions
from etl.simulators.mikrobill.store import ClientStore
from etl.simulators.mikrobill.tree import ProcessError, Processor
from etl.simulators.world import TruthRow, World

SESSION_HEADER = "X-MikroBILL-Session"
CONNECT_FIELDS = ("login", "password", "crypto_key_1", "crypto_key_2")
_dumps = functools.partial(json.dumps, ensure_ascii=False)


@dataclass
class MikrobillState:
    """Everything one simulated installation holds: data, sessions, and what clients asked for."""

    store: ClientStore
    options: MikrobillOptions
    processor: Processor
    request_log: list[dict[str, Any]] = field(default_factory=list)
    call_count: int = 0
    sessions: dict[str, str] = field(default_factory=dict)
    # Tokens opened before a reinstall: their traffic is encrypted with keys the core no longer has.
    stale_sessions: set[str] = field(default_factory=set)

    def mutate(self, fraction: float, seed: int) -> int:
        """Edit names, IPs or balances of that fraction of clients; MikroBILL records no change time."""
        return self.store.mutate(fraction, seed)

    def truth(self) -> Iterator[TruthRow]:
        """Every record served now (customer, account, product, payment) with its true world id."""
        return self.store.truth()

    def reinstall(self, crypto_key_1: str, crypto_key_2: str) -> None:
        """MikroBILL was reinstalled: new CRYPTO keys, and every open session stops decrypting."""
        self.options.crypto_key_1, self.options.crypto_key_2 = crypto_key_1, crypto_key_2
        self.stale_sessions.update(self.sessions)
        self.sessions.clear()


STATE = web.AppKey("mikrobill_state", MikrobillState)


def cashier_refusal(
    options: MikrobillOptions, body: dict[str, Any], remote: str | None, now: datetime
) -> ProcessError | None:
    """Why the core refuses this connect, or ``None`` when the cashier may work now."""
    keys = (body.get("crypto_key_1"), body.get("crypto_key_2"))
    keyless = keys == (None, None) and not options.require_crypto_keys
    if not keyless and keys != (options.crypto_key_1, options.crypto_key_2):
        return ProcessError(Code.CRYPTO_MISMATCH, "cannot decrypt request: CRYPTO keys do not match this installation")
    if (body["login"], body["password"]) != (options.login, options.password):
        return ProcessError(Code.WRONG_PASSWORD, "wrong cashier login or password")
    if not options.cashier_api_allowed:
        return ProcessError(Code.NO_API_RIGHTS, "no rights: cashier may not connect through MikroBILL_API")
    if options.cashier_trusted_ips is not None and remote not in options.cashier_trusted_ips:
        return ProcessError(Code.IP_NOT_TRUSTED, f"cashier may not connect from {remote}")
    if not _within_schedule(options, now):
        return ProcessError(Code.OUTSIDE_HOURS, "cashier may not work at this day or hour")
    return None


def _within_schedule(options: MikrobillOptions, now: datetime) -> bool:
    if options.cashier_days is not None and now.isoweekday() not in options.cashier_days:
        return False
    if options.cashier_hours is None:
        return True
    start, end = options.cashier_hours
    return start <= now.hour < end if start <= end else (now.hour >= start or now.hour < end)


def _envelope(result: Any, status: int = 200) -> web.Response:
    return web.json_response(result, status=status, dumps=_dumps)


def _bad_request(reason: str) -> web.Response:
    return _envelope(ProcessError(Code.BAD_REQUEST, reason).envelope(), status=400)


def _digest(args: Any) -> str | None:
    """A short fingerprint of the arguments, so a log reader can tell two batches on one base path apart."""
    if args is None:
        return None
    return hashlib.blake2b(json.dumps(args, sort_keys=True).encode(), digest_size=8).hexdigest()


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def connect(request: web.Request) -> web.Response:
    """``new MikroBILL_API(host, port, login, password, key1, key2)``: a session token or a refusal."""
    state = request.app[STATE]
    body = await _body(request)
    login = body.get("login") if body else None
    state.request_log.append({"method": request.method, "path": request.path, "what": f"connect {login}"})
    # The CRYPTO keys may be absent (null) only where apicore runs on the cash desk's own server.
    optional = ("crypto_key_1", "crypto_key_2") if not state.options.require_crypto_keys else ()
    fields = body or {}
    given = [
        isinstance(fields.get(name), str) or (name in optional and fields.get(name) is None) for name in CONNECT_FIELDS
    ]
    if body is None or not all(given):
        return _bad_request(f"connect needs string fields {', '.join(CONNECT_FIELDS)}")
    refusal = cashier_refusal(state.options, body, request.remote, datetime.now(UTC))
    if refusal is not None:
        return _envelope(refusal.envelope())
    token = secrets.token_hex(16)
    state.sessions[token] = body["login"]
    return _envelope({"return": token, "code": 0})


async def process(request: web.Request) -> web.Response:
    """``$Api->Process(path, args)`` on the session named by the header."""
    state = request.app[STATE]
    state.call_count += 1
    body = await _body(request)
    path = body.get("path") if body else None
    args = body.get("args") if body else None
    entry: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "what": path,
        "items": None,
        "args_digest": _digest(args),
    }
    state.request_log.append(entry)
    if state.options.core_latency_seconds:
        await asyncio.sleep(state.options.core_latency_seconds)
    if body is None or not isinstance(path, str):
        return _bad_request('process needs {"path": "<command path>", "args": ...}')
    token = request.headers.get(SESSION_HEADER, "")
    if token in state.stale_sessions:
        return _envelope(ProcessError(Code.CRYPTO_MISMATCH, "cannot decrypt request: CRYPTO keys changed").envelope())
    if token not in state.sessions:
        return _envelope(ProcessError(Code.NOT_CONNECTED, "not connected: call connect first").envelope())
    if path == "DISCONNECT":
        # The third-party client ends its session with Process("DISCONNECT") [C-code3p].
        state.sessions.pop(token, None)
        return _envelope({"return": "OK", "code": 0})
    result = state.processor.process(path, args)
    if isinstance(result, list):
        entry["items"] = len(result)
    return _envelope(result)


async def close(request: web.Request) -> web.Response:
    """``$Api->Close()``: ends the session; closing twice is harmless."""
    state = request.app[STATE]
    state.request_log.append({"method": request.method, "path": request.path, "what": "close"})
    state.sessions.pop(request.headers.get(SESSION_HEADER, ""), None)
    return _envelope({"return": "OK", "code": 0})


def create_app(
    world: World | None, *, faults: FaultPlan | None = None, options: MikrobillOptions | None = None
) -> web.Application:
    """A MikroBILL core serving ``world``'s MikroBILL clients (``None`` = an empty installation)."""
    options = replace(options) if options else MikrobillOptions()
    store = ClientStore(world)
    app = web.Application()
    app[STATE] = MikrobillState(store=store, options=options, processor=Processor(store, options, faults))
    app.router.add_post("/connect", connect)
    app.router.add_post("/process", process)
    app.router.add_post("/close", close)
    return app
