"""Handlers of the client, login and catalogue functions (one per ``func``).

Each handler takes a :class:`Call` and returns the ``<doc>`` tree, or raises :class:`BmError`.
Form functions (``*.edit``, ``register``) show the current values without ``sok=ok`` and apply
the change with it, answering ``doc.ok`` (plus ``doc.id`` for creates).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from etl.simulators.billmanager.call import Call
from etl.simulators.billmanager.doc import BmError, Node, form_doc, ok_doc
from etl.simulators.billmanager.rows import (
    CENT,
    CLIENT_STATUS,
    Client,
    Login,
    minute,
    money,
    stamp,
)
from etl.simulators.billmanager.store import ITEMTYPE_OF_KIND, login_name

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(call: Call, field: str = "email", *, required: bool = False) -> str:
    value = call.param(field)
    if (value or required) and not EMAIL.match(value):
        raise BmError("value", field, f"Invalid e-mail address: {value!r}")
    return value


def _required(call: Call, field: str) -> str:
    value = call.param(field)
    if not value:
        raise BmError("value", field, f"{field} is required")
    return value


def _project(call: Call, default: int) -> int:
    project = call.int_param("project")
    if project is None:
        return default
    if project not in call.options.projects:
        raise BmError("value", "project", f"No such project: {project}")
    return project


def _login_free(call: Call, name: str, own_id: int | None = None) -> None:
    taken = call.store.login_by_name(name)
    if taken is not None and taken.id != own_id:
        raise BmError("exists", "user", f"The user {name} already exists")


# -- clients -----------------------------------------------------------------
def client_row(call: Call, client: Client) -> dict[str, Any]:
    """The ``account`` list columns of one client."""
    return {
        "id": client.id,
        "name": client.name,
        "project": call.options.projects.get(client.project, str(client.project)),
        "balance": money(client.balance, call.options.currency),
        "account_status": CLIENT_STATUS[client.status],
        "tz_registration_date": minute(client.created_at),
        "status": client.status,
        "email": client.email,
        "phone": client.phone,
        "country": client.country,
        "changedate": stamp(client.changed_at),
    }


def account(call: Call) -> Node:
    """``func=account``: the clients the caller may see."""
    return call.listing(call.client_ids(), lambda client_id: _render(call, call.store.clients.get(client_id)))


def _render(call: Call, client: Client | None) -> dict[str, Any] | None:
    return None if client is None else client_row(call, client)


def visible_client(call: Call, client_id: int | None, obj: str = "elid") -> Client:
    """The client ``client_id`` if the caller may see it, else a ``missed`` error naming ``obj``."""
    client = None if client_id is None else call.store.clients.get(client_id)
    if client is None or not call.sees(client.id):
        raise BmError("missed", obj, f"Client {client_id} not found")
    return client


def account_edit(call: Call) -> Node:
    """``func=account.edit``: a client's form; with ``sok=ok`` create (no elid) or update it."""
    elid = call.int_param("elid")
    client = None if elid is None else visible_client(call, elid)
    if not call.sok:
        values = client_row(call, client) if client else {"name": "", "email": "", "phone": "", "country": ""}
        slists = {"project": call.options.projects.items()}
        return form_doc({"elid": elid or ""} | values | {"project": client.project if client else 1}, slists)
    email = _email(call)
    if client is None:
        name = _required(call, "name")
        if email:
            _login_free(call, login_name(email, 0))
        # A reseller's clients always land in its own project.
        project = call.options.reseller_project if call.role == "reseller" else _project(call, 1)
        created = call.store.create_client(name, email, call.param("phone"), call.param("country"), project)
        return ok_doc(created.id)
    fields: dict[str, Any] = {"project": client.project if call.role == "reseller" else _project(call, client.project)}
    if "name" in call.params:
        fields["name"] = _required(call, "name")
    for field, value in (("email", email), ("phone", call.param("phone")), ("country", call.param("country"))):
        if field in call.params:
            fields[field] = value
    call.store.clients.update(client.id, changed_at=call.store.now(), **fields)
    return ok_doc()


def register(call: Call) -> Node:
    """``func=register``: self-registration of a new client and its login (no authentication needed)."""
    if not call.sok:
        return form_doc({"email": "", "realname": "", "phone": "", "country": "", "project": 1})
    email = _email(call, required=True)
    password = call.param("passwd")
    if len(password) < 6:
        raise BmError("value", "passwd", "The password must be at least 6 characters long")
    realname = _required(call, "realname")
    if call.param("conditions_agree") != "on":
        raise BmError("value", "conditions_agree", "You must accept the terms")
    project = _project(call, 1)
    _login_free(call, login_name(email, 0))
    client = call.store.create_client(realname, email, call.param("phone"), call.param("country"), project, password)
    return ok_doc(client.id)


# -- logins ------------------------------------------------------------------
def _user_ids(call: Call) -> Sequence[int]:
    store, plid = call.store, call.int_param("plid")
    ids = store.users.ids()
    if call.role == "admin" and plid is None:
        return ids
    wanted = plid if plid is not None else (call.principal.account_id if call.role == "user" else None)

    def account_of(user_id: int) -> int:
        if user_id <= store.users.base_count:
            return user_id - 1
        return store.users.created[user_id].account_id

    return [u for u in ids if (wanted is None or account_of(u) == wanted) and u != 1 and call.sees(account_of(u))]


def user_row(login: Login) -> dict[str, Any]:
    """The ``user`` list columns of one login."""
    return {
        "id": login.id,
        "name": login.name,
        "email": login.email,
        "account_id": login.account_id or "",
        "realname": login.realname,
        "phone": login.phone,
        "changedate": stamp(login.changed_at),
    }


def user(call: Call) -> Node:
    """``func=user``: logins (all of them for the admin, the caller's own client's otherwise)."""
    return call.listing(_user_ids(call), lambda user_id: _user_render(call, user_id))


def _user_render(call: Call, user_id: int) -> dict[str, Any] | None:
    login = call.store.users.get(user_id)
    return None if login is None else user_row(login)


def user_edit(call: Call) -> Node:
    """``func=user.edit``: a login's form; with ``sok=ok`` create (no elid, needs account_id or plid) or update."""
    elid = call.int_param("elid")
    login = None if elid is None else call.store.users.get(elid)
    if elid is not None and (login is None or not call.sees(login.account_id)):
        raise BmError("missed", "elid", f"User {elid} not found")
    if not call.sok:
        return form_doc(
            {"elid": elid or ""} | (user_row(login) if login else {"name": "", "email": "", "realname": ""})
        )
    email = _email(call)
    if login is None:
        name = _required(call, "name")
        account_id = call.int_param("account_id") or call.int_param("plid")
        visible_client(call, account_id, "account_id")
        _login_free(call, name)
        fields = {"realname": call.param("realname"), "phone": call.param("phone")}
        if call.param("passwd"):
            fields["password"] = call.param("passwd")
        created = call.store.save_login(None, account_id=account_id, name=name.lower(), email=email, **fields)
        return ok_doc(created.id)
    fields = {key: call.param(key) for key in ("email", "realname", "phone") if key in call.params}
    if "name" in call.params:
        fields["name"] = _required(call, "name").lower()
        _login_free(call, fields["name"], login.id)
    if call.param("passwd"):
        fields["password"] = call.param("passwd")
    call.store.save_login(login.id, **fields)
    return ok_doc()


# -- catalogue ---------------------------------------------------------------
def pricelist(call: Call) -> Node:
    """``func=pricelist``: tariff plans, of one ``itemtype`` when given."""
    store, itemtype = call.store, call.param("itemtype")
    ids = store.plans.ids()
    if itemtype:
        ids = [plan_id for plan_id in ids if ITEMTYPE_OF_KIND[store.catalogue[plan_id - 1].kind] == itemtype]
    return call.listing(ids, lambda plan_id: _plan_render(call, plan_id))


def _plan_render(call: Call, plan_id: int) -> dict[str, Any] | None:
    plan = call.store.plans.get(plan_id)
    if plan is None:
        return None
    return {
        "id": plan.id,
        "name": plan.name,
        "price": money(plan.price, plan.currency),
        "cost": str(plan.price.quantize(CENT)),
        "currency": plan.currency,
        "itemtype": plan.itemtype,
        "changedate": stamp(plan.changed_at),
    }
