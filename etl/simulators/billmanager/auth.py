"""Who is calling: sessions (``func=auth`` then ``auth=<sid>``), ``authinfo=user:pass``, keys and ``su``.

Sessions expire ``session_ttl`` seconds (3600 in the panel) after their LAST request, measured
on the injectable ``options.clock`` so tests can move time instead of sleeping.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from etl.simulators.billmanager.doc import BmError
from etl.simulators.billmanager.options import BillmanagerOptions
from etl.simulators.billmanager.store import Store


@dataclass(frozen=True, slots=True)
class Principal:
    """The identity a request acts as: ``role`` is admin, reseller or user (a client login)."""

    user_id: int
    name: str
    role: str
    account_id: int


@dataclass(slots=True)
class Session:
    principal: Principal
    last_seen: float


class Sessions:
    """Open panel sessions keyed by sid, expiring ``ttl`` seconds after the last request."""

    def __init__(self, clock: Callable[[], float], ttl: float) -> None:
        self._clock = clock
        self.ttl = ttl
        self._open: dict[str, Session] = {}

    def open(self, principal: Principal) -> str:
        """Start a session and return its sid."""
        sid = secrets.token_hex(12)
        self._open[sid] = Session(principal, self._clock())
        return sid

    def resume(self, sid: str) -> Principal | None:
        """The session's principal, touching it; None (and forgotten) when unknown or idle too long."""
        session = self._open.get(sid)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen > self.ttl:
            del self._open[sid]
            return None
        session.last_seen = now
        return session.principal

    def drop(self, sid: str) -> None:
        """End a session (logout, or the session_expiry fault)."""
        self._open.pop(sid, None)

    def __len__(self) -> int:
        return len(self._open)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def by_password(store: Store, options: BillmanagerOptions, username: str, password: str) -> Principal | None:
    """Check a login and password; the admin and reseller are checked before any client login is indexed."""
    if username == options.username:
        return Principal(1, username, "admin", 0) if _same(password, options.password) else None
    if username == options.reseller_username:
        return Principal(0, username, "reseller", 0) if _same(password, options.reseller_password) else None
    login = store.login_by_name(username)
    if login is None or login.level == "admin" or not _same(password, login.password):
        return None
    return Principal(login.id, login.name, "user", login.account_id)


def by_key(store: Store, options: BillmanagerOptions, username: str, key: str) -> Principal | None:
    """[guess] ``func=auth&username=&key=``: a pass-through key the admin issued (``options.auth_keys``)."""
    expected = options.auth_keys.get(username)
    if expected is None or len(expected) < 16 or not _same(key, expected):
        return None
    return named(store, options, username)


def named(store: Store, options: BillmanagerOptions, username: str) -> Principal | None:
    """The principal of a login name, without a password (keys, su)."""
    if username == options.username:
        return Principal(1, username, "admin", 0)
    if username == options.reseller_username:
        return Principal(0, username, "reseller", 0)
    login = store.login_by_name(username)
    if login is None or login.level == "admin":
        return None
    return Principal(login.id, login.name, "user", login.account_id)


def by_authinfo(store: Store, options: BillmanagerOptions, authinfo: str, remote: str | None) -> Principal:
    """``authinfo=user:pass`` on one call; the optional IP whitelist is checked first."""
    if options.authinfo_whitelist is not None and not _whitelisted(remote, options.authinfo_whitelist):
        raise BmError(options.access_error_type, "authinfo", "authinfo is not allowed from this address")
    username, _, password = authinfo.partition(":")
    principal = by_password(store, options, username, password)
    if principal is None:
        raise BmError(options.auth_error_type, "authinfo")
    return principal


def _whitelisted(remote: str | None, networks: tuple[str, ...]) -> bool:
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in networks)


def switch_user(store: Store, options: BillmanagerOptions, principal: Principal, target: str) -> Principal:
    """``su=<user>``: the admin may act as anyone, a reseller as its own clients' logins, nobody else at all."""
    if principal.role == "user":
        raise BmError(options.access_error_type, "su", "su is allowed to administrators and resellers only")
    switched = named(store, options, target)
    if switched is None:
        raise BmError("missed", "su", f"No such user: {target}")
    if principal.role == "admin":
        return switched
    if switched.role != "user" or store.project_of(switched.account_id) != options.reseller_project:
        raise BmError(options.access_error_type, "su", "A reseller may act only as its own clients")
    return switched
