"""``DolibarrApiAccess::__isAllowed`` and ``api_login``: where the key may be, and what a bad one gets.

The key is read from the ``DOLAPIKEY`` header first, then ``?api_key=`` / ``?DOLAPIKEY=``, then (NEW
only) ``Authorization: Bearer``. No key: 401 at once. An unknown key: Dolibarr sleeps a second
(brute-force protection), then 401 naming the entity. ``DOLAPIENTITY`` picks the entity.
A fired ``revoked_key`` fault rejects a burst of requests with a valid key the same way.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import web

from etl.simulators.miclinik.errors import RestError, json_value
from etl.simulators.miclinik.rows import UserRow

if TYPE_CHECKING:
    from etl.simulators.miclinik.app import MiclinikState

MISSING_KEY_NEW = (
    "Failed to login to API. Neither parameter 'HTTP_DOLAPIKEY' nor 'Authentication: Bearer' found on HTTP header "
    "(and no parameter DOLAPIKEY in URL)."
)
MISSING_KEY_OLD = (
    "Failed to login to API. No parameter 'HTTP_DOLAPIKEY' on HTTP header (and no parameter DOLAPIKEY in URL)."
)
BAD_KEY = "Error user not valid (not found with api key or bad status or bad validity dates) (conf->entity={entity})"
WELCOME = (
    "Welcome {login} - This is your token (recorded for your user). You can use it to make any REST API call, "
    "or enter it into the DOLAPIKEY field to use the Dolibarr API explorer."
)


def api_key_of(request: web.Request, *, new: bool) -> str | None:
    """The API key the request carries, looked for where the profile's Dolibarr looks."""
    key = request.headers.get("DOLAPIKEY")
    if key:
        return key
    key = request.query.get("api_key") or request.query.get("DOLAPIKEY")
    if key:
        return key
    if new:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


def requested_entity(request: web.Request, default: int) -> int:
    """``DOLAPIENTITY`` when it is a number, else the installation's entity."""
    text = request.headers.get("DOLAPIENTITY", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else default


async def authenticate(request: web.Request, state: MiclinikState) -> UserRow:
    """The user behind the request's key, or the RestError Dolibarr answers with."""
    options = state.options
    key = api_key_of(request, new=options.is_new)
    if key is None:
        message = MISSING_KEY_NEW if options.is_new else MISSING_KEY_OLD
        raise RestError(401, message, source="api_access.class.php:317", stage="authenticate")
    entity = requested_entity(request, options.entity)
    user = state.store.user_by_key(key)
    if user is not None and user.entity not in (0, entity):
        user = None
    if user is not None and _revoked(state):
        user = None
    if user is None:
        await asyncio.sleep(options.bad_key_delay)
        raise RestError(401, BAD_KEY.format(entity=entity), source="api_access.class.php:242", stage="authenticate")
    return user


def _revoked(state: MiclinikState) -> bool:
    """Whether a revoked-key burst rejects this request (a fired fault starts a burst)."""
    if state.revoked_left > 0:
        state.revoked_left -= 1
        return True
    if state.faults is not None and state.faults.roll("revoked_key"):
        state.revoked_left = max(0, state.options.revoked_burst - 1)
        return True
    return False


def permission_denied(state: MiclinikState, message: str = "", source: str = "api.class.php:0") -> RestError:
    """Missing right: 401 in the OLD profile, 403 in the NEW one (protocols.md §1.3)."""
    return RestError(403 if state.options.is_new else 401, message, source=source)


def may(user: UserRow, right: str) -> bool:
    """Whether the user holds ``right`` (``produit.lire``, ``societe.creer``, ...); admins hold all."""
    return "admin" in user.rights or right in user.rights


async def login(request: web.Request, state: MiclinikState, body: dict | None) -> web.Response:
    """GET /login?login=&password= or POST /login {"login","password"}: the user's token."""
    params: Mapping[str, object] = body if request.method == "POST" and body is not None else request.query
    for name in ("login", "password"):
        if not params.get(name):
            # [guess] Restler's own text for a missing mandatory parameter.
            raise RestError(400, f"`{name}` is missing.", source="Validator.php:0", stage="route")
    user = next((u for u in state.store.users.values() if u.login == params["login"]), None)
    # [guess] only the admin has a password the simulator knows; staff members cannot log in
    if user is None or user.rowid != 1 or params["password"] != state.options.password:
        raise RestError(403, "Access denied", source="api_login.class.php:139", stage="public")
    if str(params.get("reset", "0")) in ("1", "true") or user.api_key is None:
        user.api_key = secrets.token_hex(16)
        state.store.touch(user)
    welcome = WELCOME.format(login=user.login)
    return json_value({"success": {"code": 200, "token": user.api_key, "entity": str(user.entity), "message": welcome}})
