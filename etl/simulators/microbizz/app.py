"""The endpoint: ``/api/endpoint.php`` taking the envelope as form field ``json``.

protocols.md §3.1/§3.2: POST (urlencoded or multipart) or GET ``?json=``. The
envelope carries contract + apikey + username + password, or contract +
accesstoken; ``commands`` run in order, one result each. Envelope-level failures
(no or bad JSON, bad credentials, a busy server) answer ``{"status":0,"msg":…}``
with no ``results`` and HTTP ``options.error_http_status`` [guess: 200]. Success
answers ``{"status":1,"msg":"OK","results":[…],"date":…,"time":…}``, date and time
being the moment the request was received, in the tenant's zone.

Fault kinds rolled here (when a plan is given): ``busy`` answers a whole envelope
status 0 "server busy" [guess: the text]; ``partial_batch`` fails one command of a
multi-command envelope with "temporarily unavailable" [guess: the text], without
running it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from etl.simulators.faults import FaultPlan
from etl.simulators.microbizz.commands import COMMANDS
from etl.simulators.microbizz.context import CommandError, Context
from etl.simulators.microbizz.fields import future_fields
from etl.simulators.microbizz.options import MicrobizzOptions
from etl.simulators.microbizz.state import MicrobizzState
from etl.simulators.microbizz.types import BadValue, parse_bool, parse_number, stamp
from etl.simulators.world import World, rng_for

STATE = web.AppKey("microbizz_state", MicrobizzState)
PATH = "/api/endpoint.php"
BUSY_MSG = "Server busy, please try again later"
UNAVAILABLE_MSG = "Service temporarily unavailable, please try again"
HALTED_MSG = "Not executed: an earlier command failed (haltonerror)"
_LOGGED_INPUTS = ("changedate", "changetime", "resumekey")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def create_app(
    world: World | None, *, faults: FaultPlan | None = None, options: MicrobizzOptions | None = None
) -> web.Application:
    """The Microbizz simulator; ``world=None`` is a tenant with no records at all."""
    app = web.Application()
    app[STATE] = MicrobizzState(world, faults, options or MicrobizzOptions())
    app.router.add_get(PATH, endpoint)
    app.router.add_post(PATH, endpoint)
    return app


async def _json_field(request: web.Request) -> str | None:
    """The ``json`` field from the form body, else from the query string (PHP's $_REQUEST)."""
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        form = await request.post()
        value = form.get("json")
        if isinstance(value, web.FileField):
            return value.file.read().decode("utf-8", errors="replace")
        if isinstance(value, str):
            return value
    return request.query.get("json")


def _parse(raw: str | None) -> tuple[dict[str, Any] | None, str | None]:
    if raw is None or not raw.strip():
        return None, "No json parameter given"
    try:
        envelope = json.loads(raw)
    except ValueError:
        return None, "Invalid JSON in the json parameter"
    if not isinstance(envelope, dict):
        return None, "The json parameter must be an object (envelope)"
    if not isinstance(envelope.get("commands"), list):
        return None, "commands missing or not a collection"
    return envelope, None


def _authenticate(options: MicrobizzOptions, envelope: dict[str, Any]) -> str | None:
    """The reason the envelope's identification is refused, or None when it is accepted."""
    try:
        contract = parse_number(envelope.get("contract"), "contract")
    except BadValue:
        return "Unknown contract"
    if contract != options.contract:
        return "Unknown contract"
    token = envelope.get("accesstoken")
    if token not in (None, ""):
        return None if token in options.access_tokens else "Invalid access token"
    if envelope.get("apikey") != options.apikey:
        return "Invalid API key"
    if envelope.get("username") != options.username or envelope.get("password") != options.password:
        return "Invalid username or password"
    return None


def _describe(command: Any) -> dict[str, Any]:
    if not isinstance(command, dict):
        return {"command": None}
    described = {"command": command.get("command")}
    described.update({name: command[name] for name in _LOGGED_INPUTS if name in command})
    return described


def _run_one(ctx: Context, command: Any, unavailable: bool) -> dict[str, Any]:
    if not isinstance(command, dict) or not isinstance(command.get("command"), str):
        return {"status": 0, "msg": "command missing"}
    handler = COMMANDS.get(command["command"])
    if handler is None:
        return {"status": 0, "msg": f"Unknown command {command['command']}"}
    if unavailable:
        return {"status": 0, "msg": UNAVAILABLE_MSG}
    try:
        return {"status": 1, **handler(ctx, command)}
    except CommandError as exc:
        return {"status": 0, "msg": str(exc)}


def _run(ctx: Context, commands: list[Any], halt: bool) -> list[dict[str, Any]]:
    """One result per command, in order; with ``halt`` nothing runs after the first failure."""
    state = ctx.state
    unavailable = None
    if state.faults is not None and len(commands) > 1 and state.faults.roll("partial_batch"):
        unavailable = rng_for(state.faults.seed, "mbz-partial", state.call_count).randrange(len(commands))
    results = []
    for index, command in enumerate(commands):
        result = _run_one(ctx, command, index == unavailable)
        result.update(future_fields(state.seed, "result", (state.call_count, index), state.options.extra_field_rate))
        results.append(result)
        if halt and result["status"] == 0:
            if state.options.halt_emits_skipped:
                results += [{"status": 0, "msg": HALTED_MSG} for _ in commands[index + 1 :]]
            break
    return results


def _failure(state: MicrobizzState, entry: dict[str, Any], msg: str) -> web.Response:
    entry["status"] = 0
    return web.json_response({"status": 0, "msg": msg}, status=state.options.error_http_status)


async def endpoint(request: web.Request) -> web.Response:
    """Parse, authenticate and run one envelope."""
    state = request.app[STATE]
    received = state.now()
    state.call_count += 1
    date, time = stamp(received, state.zone)
    entry: dict[str, Any] = {"method": request.method, "path": request.path, "what": [], "commands": []}
    entry.update(received=f"{date} {time}", status=None)
    state.request_log.append(entry)
    envelope, problem = _parse(await _json_field(request))
    if envelope is None:
        return _failure(state, entry, problem or "Invalid request")
    entry["what"] = [_describe(command) for command in envelope["commands"]]
    entry["commands"] = [described["command"] for described in entry["what"]]
    refused = _authenticate(state.options, envelope)
    if refused:
        return _failure(state, entry, refused)
    try:
        halt = parse_bool(envelope.get("haltonerror", 0), "haltonerror")
    except BadValue as exc:
        return _failure(state, entry, str(exc))
    if state.faults is not None and state.faults.roll("busy"):
        return _failure(state, entry, BUSY_MSG)
    ctx = Context(state, received)
    results = _run(ctx, envelope["commands"], halt)
    if state.options.slow_seconds_per_object > 0 and ctx.objects:
        await asyncio.sleep(ctx.objects * state.options.slow_seconds_per_object)
    entry["status"] = 1
    body: dict[str, Any] = {"status": 1, "msg": "OK", "results": results, "date": date, "time": time}
    body.update(future_fields(state.seed, "envelope", state.call_count, state.options.extra_field_rate))
    return web.json_response(body)
