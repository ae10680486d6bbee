"""The aiohttp application: ``/billmgr`` and ``/manager/billmgr``, GET or form POST, one ``func`` per request.

Every application answer is HTTP 200, errors included (``doc.error``); only the
infrastructure in front of the panel (another middleware) produces other statuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from etl.simulators.billmanager import changes, quirks
from etl.simulators.billmanager.auth import Principal, Sessions, by_authinfo, by_key, by_password, switch_user
from etl.simulators.billmanager.call import Call
from etl.simulators.billmanager.doc import BmError, Node, error_node, to_json, to_jsondata, to_text, to_xml
from etl.simulators.billmanager.functions import account, account_edit, pricelist, register, user, user_edit
from etl.simulators.billmanager.options import BillmanagerOptions
from etl.simulators.billmanager.payments import payment, payment_edit, paymethod
from etl.simulators.billmanager.services import Handler, service_funcs
from etl.simulators.billmanager.store import Store
from etl.simulators.faults import FaultPlan
from etl.simulators.world import TruthRow, World

PATHS = ("/billmgr", "/manager/billmgr")
FUNCS: dict[str, Handler] = {
    "account": account,
    "account.edit": account_edit,
    "user": user,
    "user.edit": user_edit,
    "payment": payment,
    "payment.edit": payment_edit,
    "paymethod": paymethod,
    "pricelist": pricelist,
    "register": register,
} | service_funcs()
PUBLIC_FUNCS = frozenset({"register"})
TRUNCATABLE_LISTS = frozenset({"account"})
# Never echoed in tparams nor written to the request log.
SECRET_PARAMS = frozenset({"password", "passwd", "authinfo", "key", "auth"})
LOGGED_PARAMS = (
    "func",
    "p_num",
    "p_cnt",
    "p_sort",
    "p_order",
    "elid",
    "plid",
    "elname",
    "su",
    "sok",
    "clicked_button",
    "filter",
)


@dataclass
class BillmanagerState:
    """The running simulator: its database, sessions, faults and the log of what was asked."""

    store: Store
    options: BillmanagerOptions
    faults: FaultPlan | None
    sessions: Sessions
    request_log: list[dict[str, Any]] = field(default_factory=list)
    call_count: int = 0
    # func -> list pages served so far, and the ids deleted mid-scan (options.delete_row_after_page).
    pages_served: dict[str, int] = field(default_factory=dict)
    deleted_mid_scan: list[tuple[str, int]] = field(default_factory=list)

    def mutate(self, fraction: float, seed: int) -> int:
        """Edit ``fraction`` of the records as panel users would, stamping their changedate; returns how many."""
        return changes.mutate(self.store, fraction, seed)

    def truth(self) -> Iterator[TruthRow]:
        """Every record served now with its true world id (see :func:`changes.truth`)."""
        return changes.truth(self.store)


STATE: web.AppKey[BillmanagerState] = web.AppKey("billmanager_state", BillmanagerState)


def create_app(
    world: World | None, *, faults: FaultPlan | None = None, options: BillmanagerOptions | None = None
) -> web.Application:
    """A BILLmanager panel serving ``world``'s billmanager members (an empty database when ``world`` is None)."""
    options = options or BillmanagerOptions()
    app = web.Application()
    app[STATE] = BillmanagerState(
        store=Store(world, options),
        options=options,
        faults=faults,
        sessions=Sessions(options.clock, options.session_ttl),
    )
    for path in PATHS:
        app.router.add_get(path, _handle)
        app.router.add_post(path, _handle)
    return app


async def _params(request: web.Request) -> dict[str, str]:
    params = dict(request.query)
    if request.method == "POST":
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params


async def _handle(request: web.Request) -> web.Response:
    state = request.app[STATE]
    params = await _params(request)
    func = params.get("func", "").strip()
    state.call_count += 1
    entry: dict[str, Any] = {"method": request.method, "path": request.path}
    entry |= {name: params.get(name) for name in LOGGED_PARAMS}
    entry["what"] = {key: value for key, value in params.items() if key not in SECRET_PARAMS}
    state.request_log.append(entry)
    lang = params.get("lang") if params.get("lang") in state.options.languages else state.options.default_lang
    try:
        doc, principal = _dispatch(state, request, params, func)
        entry["user"] = principal.name if principal else None
        entry["result"] = "error" if doc.find("error") else "logon" if doc.attrs.get("func") == "logon" else "ok"
    except BmError as err:
        doc = Node("doc", children=[error_node(err, lang)])
        entry["result"] = f"error:{err.type}"
    return _respond(state, request, doc, params, func, lang)


def _dispatch(
    state: BillmanagerState, request: web.Request, params: dict[str, str], func: str
) -> tuple[Node, Principal | None]:
    options = state.options
    if func == "auth":
        return _open_session(state, params)
    principal = None if func in PUBLIC_FUNCS else _authenticate(state, request, params)
    if isinstance(principal, Node):
        return principal, None  # the logon form of a dead session
    if principal is not None and params.get("su", "").strip():
        principal = switch_user(state.store, options, principal, params["su"].strip())
    if func in options.logon_form_funcs:
        return quirks.logon_form(), principal
    handler = None if func in options.disabled_funcs else quirks.installed(options, FUNCS, func)
    if handler is None:
        error_type, error_object = options.unknown_func_error
        raise BmError(error_type, error_object, f"Unknown function: {func!r}")
    call = Call(state.store, options, params, func, principal)
    if principal is not None and principal.role == "user" and call.admin_only():
        truncate = options.denied_list_mode == "truncate" and func in TRUNCATABLE_LISTS
        if not truncate:
            raise call.deny()
    doc = handler(call)
    deleted = quirks.after_list_page(state.store, call, state.pages_served)
    if deleted is not None:
        state.deleted_mid_scan.append((func, deleted))
    return doc, principal


def _open_session(state: BillmanagerState, params: dict[str, str]) -> tuple[Node, Principal]:
    """``func=auth&username=&password=`` (or ``&key=``): ``doc.auth`` with ``$id``, ``$level`` and the sid as text."""
    options, username = state.options, params.get("username", "")
    if "key" in params:
        principal = by_key(state.store, options, username, params["key"])
    else:
        principal = by_password(state.store, options, username, params.get("password", ""))
    if principal is None:
        raise BmError(options.auth_error_type, "username", "Invalid username or password")
    sid = state.sessions.open(principal)
    doc = Node("doc")
    doc.add("auth", sid, id=sid, level=str(options.levels[principal.role]))
    return doc, principal


def _authenticate(state: BillmanagerState, request: web.Request, params: dict[str, str]) -> Principal | Node:
    """Who calls, or the logon form a dead session lands on (``options.logon_form_on_expiry``)."""
    options = state.options
    if "authinfo" in params:
        return by_authinfo(state.store, options, params["authinfo"], request.remote)
    sid = params.get("auth", "").strip()
    if not sid:
        raise BmError(options.auth_error_type, "auth", "Authorization required")
    principal = state.sessions.resume(sid)
    expired = "The session has expired or does not exist"
    if principal is None:
        return _dead(quirks.dead_session(options, expired))
    if state.faults is not None and state.faults.roll("session_expiry"):
        state.sessions.drop(sid)
        return _dead(quirks.dead_session(options, expired))
    # Drawn only when a plan names the kind, so plans without it keep their seeded sequence.
    if state.faults is not None and "logon_form" in state.faults.rates and state.faults.roll("logon_form"):
        state.sessions.drop(sid)
        return quirks.logon_form()
    if quirks.authtype_now(options, state.call_count):
        state.sessions.drop(sid)
        raise BmError("authtype", "", "Authorization type is not allowed for this session")
    return principal


def _dead(answer: BmError | Node) -> Node:
    if isinstance(answer, BmError):
        raise answer
    return answer


def _respond(
    state: BillmanagerState, request: web.Request, doc: Node, params: dict[str, str], func: str, lang: str
) -> web.Response:
    options = state.options
    # A logon form names its own function, whatever was asked.
    doc.attrs = {
        "lang": lang,
        "func": doc.attrs.get("func", func),
        "binary": request.path,
        "host": options.host,
        "theme": "orion",
    }
    tparams = doc.add("tparams")
    for key, value in params.items():
        if key not in SECRET_PARAMS:
            tparams.add(key, value)
    out, as_array = params.get("out", ""), options.single_elem_as_array
    if out == "json":
        body = json.dumps({"doc": to_json(doc, elem_array=as_array)}, ensure_ascii=False)
        return web.Response(text=body, content_type="application/json")
    if out == "JSONdata":
        return web.Response(
            text=json.dumps(to_jsondata(doc, elem_array=as_array), ensure_ascii=False), content_type="application/json"
        )
    if out in ("xml", "devel"):  # devel = xml plus UI description, which no ETL reads
        return web.Response(text=to_xml(doc), content_type="text/xml")
    if out == "text":
        return web.Response(text=to_text(doc), content_type="text/plain")
    title = "BILLmanager" if func else "BILLmanager: log in"
    return web.Response(
        text=f"<!DOCTYPE html><html><head><title>{title}</title></head><body></body></html>", content_type="text/html"
    )
