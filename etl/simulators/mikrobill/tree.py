"""``Process(path, args)``: path resolution over the API class tree and batch expansion.

The tree (``[C]`` from the manual, ``[C-code3p]`` seen in a third-party client, ``[guess]`` ours)::

    API.GetClients(null | "<login>")                      -> [client ids]            [C]; login search [C-code3p]
    API.Client.<id>.AutorizeInfo.Name                     rw string                  [C]
    API.Client.<id>.AutorizeInfo.Accounts                 -> [account GUIDs]         [C]
    API.Client.<id>.AutorizeInfo.Accounts.AddAccount([ip, mac, login, password])    [C]
    API.Client.<id>.AutorizeInfo.Accounts.<guid>.IP|MAC   rw string                  [C]
    API.Client.<id>.AutorizeInfo.Accounts.<guid>.Login|Password  rw string           [C-code3p]
    API.Client.<id>.AutorizeInfo.Accounts.<guid>.Tariff   -> tariff id               [guess]
    API.Client.<id>.BillingInfo.Money|DefaultInterface    -> "100.01" | string       [C]
    API.Client.<id>.BillingInfo.Tariff                    -> tariff id of 1st account [C-code3p path]
    API.Client.<id>.StatusInfo.BlockReason|CurrentSpeedLimitIn  -> -1 | kbit/s        [C]
    API.Client.<id>.StatusInfo.Blocked                    -> bool                    [C-code3p path, type guess]
    API.Client.<id>.Payments                              -> [moneys rows]           [guess]
    API.GetTariffs / API.GetServices                      -> [ids]                   [guess]
    API.Tariff.<id>.Name|Price|Type, API.Service.<id>.…   (Type = system_objects.object_type) [guess]

A list or dict argument to a path that is not a function is a batch (2.0.9+):
each element extends the base path; list elements are reads, ``key: value``
pairs are writes, a list or dict value nests further, and ``key: null`` reads
[guess]. Consequently a function taking a list (AddAccount) cannot be called
inside a batch: its list would read as nested paths. The reply is one
``{"return","code","path"}`` per expanded path, in argument order.
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from etl.simulators.faults import FaultPlan
from etl.simulators.mikrobill.options import Code, MikrobillOptions
from etl.simulators.mikrobill.store import ACCOUNT_FIELDS, OBJECT_TYPES, ClientRow, ClientStore

API_FUNCTIONS = ("GetClients", "GetTariffs", "GetServices")
FUNCTIONS = (*API_FUNCTIONS, "AddAccount")
_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}")


class ProcessError(Exception):
    """A failed Process item: a non-zero code and its text reason."""

    def __init__(self, code: Code, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def envelope(self) -> dict[str, Any]:
        """``{"return": <reason>, "code": <non-zero>}``."""
        return {"return": self.reason, "code": int(self.code)}


@dataclass(frozen=True, slots=True)
class Item:
    """One path of an expanded batch: a read, or a write of ``value``; ``bad`` names a malformed element."""

    path: str
    write: bool = False
    value: Any = None
    bad: str | None = None


def is_function(path: str) -> bool:
    """Whether the path names a function, whose list argument is its input rather than a batch."""
    return path.rsplit(".", 1)[-1] in FUNCTIONS


def expand(base: str, args: list | dict, limit: int) -> list[Item]:
    """Batch argument -> paths in argument order; more than ``limit`` paths refuses the whole call."""
    items: list[Item] = []
    _expand(base, args, items, limit)
    return items


def _expand(base: str, args: list | dict, items: list[Item], limit: int) -> None:
    pairs = args.items() if isinstance(args, dict) else ((element, None) for element in args)
    for key, value in pairs:
        if isinstance(key, (list, dict)):
            _expand(base, key, items, limit)
            continue
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            item = Item(base, bad=f"batch element must be a name, not {key!r}")
        elif isinstance(value, (list, dict)):
            _expand(f"{base}.{key}", value, items, limit)
            continue
        else:
            item = Item(f"{base}.{key}", write=value is not None, value=value)
        if len(items) == limit:
            raise ProcessError(Code.BATCH_TOO_LARGE, f"batch expands to more than {limit} paths")
        items.append(item)


def _digits(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


@dataclass(frozen=True, slots=True)
class Prop:
    """A leaf of the tree: how to read it and, if writable, how to write it."""

    read: Callable[[Processor, ClientRow], Any]
    write: Callable[[Processor, ClientRow, Any], None] | None = None


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProcessError(Code.BAD_ARGUMENT, f"{what} must be a non-empty string")
    return value


def _ip(value: Any) -> str:
    try:
        return str(ipaddress.IPv4Address(_text(value, "IP")))
    except ipaddress.AddressValueError:
        raise ProcessError(Code.BAD_ARGUMENT, f"not an IPv4 address: {value!r}") from None


def _mac(value: Any) -> str:
    if not _MAC.fullmatch(_text(value, "MAC")):
        raise ProcessError(Code.BAD_ARGUMENT, f"not a MAC address: {value!r}")
    return value


CLIENT_PROPS: dict[tuple[str, ...], Prop] = {
    ("AutorizeInfo", "Name"): Prop(
        lambda p, row: p.store.name(row), lambda p, row, v: p.store.set_name(row, _text(v, "Name"))
    ),
    ("AutorizeInfo", "Accounts"): Prop(
        lambda p, row: [p.options.render_id(account.guid) for account in p.store.accounts(row)]
    ),
    ("BillingInfo", "Money"): Prop(lambda p, row: f"{p.store.money(row):.2f}"),
    ("BillingInfo", "DefaultInterface"): Prop(lambda p, row: row.interface),
    ("BillingInfo", "Tariff"): Prop(lambda p, row: p.store.tariff_id(row)),
    ("StatusInfo", "BlockReason"): Prop(lambda p, row: p.store.block_reason(row)),
    ("StatusInfo", "CurrentSpeedLimitIn"): Prop(lambda p, row: p.store.speed_limit_in(row)),
    ("StatusInfo", "Blocked"): Prop(lambda p, row: p.store.block_reason(row) != -1),
    ("Payments",): Prop(lambda p, row: p.store.payments(row, p.options.render_id)),
}
# Account leaves: API name -> validator for writes (None = read-only).
ACCOUNT_WRITES: dict[str, Callable[[Any], str] | None] = {
    "IP": _ip,
    "MAC": _mac,
    "Login": lambda v: _text(v, "Login"),
    "Password": lambda v: _text(v, "Password"),
    "Tariff": None,
}
CATALOGUE = {"Tariff": "tariff", "Service": "service"}


class Processor:
    """Answers Process calls against one store, with this installation's options and faults."""

    def __init__(self, store: ClientStore, options: MikrobillOptions, faults: FaultPlan | None = None) -> None:
        self.store = store
        self.options = options
        self.faults = faults
        # Which batch item a partial_batch fault hits: seeded, so a run replays the same failures.
        self._random = random.Random(faults.seed if faults else 0)

    def process(self, path: str, args: Any) -> dict[str, Any] | list[dict[str, Any]]:
        """What ``Process(path, args)`` returns: one envelope, or a list of them for a batch."""
        if self.faults and self.faults.roll("busy"):
            return ProcessError(Code.CORE_BUSY, "core busy, try again later").envelope()
        if isinstance(args, (list, dict)) and not is_function(path):
            return self._batch(path, args)
        try:
            return {"return": self.execute(path, args, write=args is not None), "code": 0}
        except ProcessError as error:
            return error.envelope()

    def _batch(self, path: str, args: list | dict) -> dict[str, Any] | list[dict[str, Any]]:
        if not self.options.batch_supported:
            reason = f"batch commands need MikroBILL 2.0.9 or newer; this is {self.options.version}"
            return ProcessError(Code.BATCH_UNSUPPORTED, reason).envelope()
        try:
            items = expand(path, args, self.options.max_batch_items)
        except ProcessError as error:
            return error.envelope()
        skipped = -1
        if items and self.faults and self.faults.roll("partial_batch"):
            skipped = self._random.randrange(len(items))
        results = []
        for index, item in enumerate(items):
            try:
                if item.bad:
                    raise ProcessError(Code.BAD_ARGUMENT, item.bad)
                if index == skipped:
                    raise ProcessError(Code.CORE_BUSY, "core busy, item not processed")
                results.append({"return": self.execute(item.path, item.value, write=item.write), "code": 0})
            except ProcessError as error:
                results.append(error.envelope())
            results[-1]["path"] = item.path
        return results

    def execute(self, path: str, value: Any, *, write: bool) -> Any:
        """One path: a function call with ``value`` as input, a read, or a write of ``value`` ("OK")."""
        parts = path.split(".")
        if parts[0] == "API" and len(parts) == 2 and parts[1] in API_FUNCTIONS:
            return self._api_function(parts[1], value)
        if parts[0] == "API" and len(parts) >= 3 and parts[1] in self.options.client_branches:
            return self._client(path, parts[2], parts[3:], value, write)
        if parts[0] == "API" and len(parts) == 4 and parts[1] in CATALOGUE:
            return self._catalogue(path, CATALOGUE[parts[1]], parts[2], parts[3], write)
        raise ProcessError(Code.PATH_NOT_FOUND, f"path not found: {path}")

    def _client(self, path: str, client_id: str, rest: list[str], value: Any, write: bool) -> Any:
        number = _digits(client_id)
        row = self.store.find(number) if number is not None else None
        if row is None:
            raise ProcessError(Code.CLIENT_NOT_FOUND, f"client not found: {client_id}")
        if rest[:2] == ["AutorizeInfo", "Accounts"] and len(rest) > 2:
            return self._account(path, row, rest[2:], value, write)
        prop = CLIENT_PROPS.get(tuple(rest))
        if prop is None or ".".join(rest) in self.options.unknown_properties:
            raise ProcessError(Code.PATH_NOT_FOUND, f"path not found: {path}")
        if not write:
            return prop.read(self, row)
        if prop.write is None:
            raise ProcessError(Code.READ_ONLY, f"property is read-only: {path}")
        prop.write(self, row, value)
        return "OK"

    def _account(self, path: str, row: ClientRow, rest: list[str], value: Any, write: bool) -> Any:
        if rest == ["AddAccount"]:
            return self._add_account(row, value)
        number = _digits(rest[0])
        account = self.store.account(row, number) if number is not None else None
        if account is None:
            raise ProcessError(Code.ACCOUNT_NOT_FOUND, f"account not found: {rest[0]}")
        if len(rest) != 2 or rest[1] not in ACCOUNT_WRITES or f"Accounts.{rest[1]}" in self.options.unknown_properties:
            raise ProcessError(Code.PATH_NOT_FOUND, f"path not found: {path}")
        name = rest[1]
        if not write:
            return account.tariff_id if name == "Tariff" else getattr(account, ACCOUNT_FIELDS[name])
        validate = ACCOUNT_WRITES[name]
        if validate is None:
            raise ProcessError(Code.READ_ONLY, f"property is read-only: {path}")
        self.store.set_account_field(row, account.guid, name, validate(value))
        return "OK"

    def _add_account(self, row: ClientRow, args: Any) -> str:
        usage = "AddAccount expects [ip, mac, login, password]"
        if not isinstance(args, list) or len(args) != 4:
            raise ProcessError(Code.BAD_ARGUMENT, usage)
        ip, mac, login, password = args
        ip = _ip(ip)
        mac = _mac(mac) if mac not in ("", None) else ""
        login, password = _text(login, "login"), _text(password, "password")
        if any(account.login == login for account in self.store.accounts(row)):
            raise ProcessError(Code.BAD_ARGUMENT, f"login already exists: {login}")
        self.store.add_account(row, ip, mac, login, password)
        return "OK"

    def _catalogue(self, path: str, kind: str, item_id: str, name: str, write: bool) -> Any:
        number = _digits(item_id)
        item = self.store.catalogue_item(kind, number) if number is not None else None
        if item is None:
            raise ProcessError(Code.OBJECT_NOT_FOUND, f"{kind} not found: {item_id}")
        known = (
            name in ("Name", "Price", "Type") and f"{path.split('.')[1]}.{name}" not in self.options.unknown_properties
        )
        if not known:
            raise ProcessError(Code.PATH_NOT_FOUND, f"path not found: {path}")
        if write:
            raise ProcessError(Code.READ_ONLY, f"property is read-only: {path}")
        return {"Name": item.label, "Price": f"{item.price:.2f}", "Type": OBJECT_TYPES[kind]}[name]

    def _api_function(self, name: str, args: Any) -> list[int | str]:
        if name == "GetClients":
            if args is None:
                return [self.options.render_id(client_id) for client_id in self.store.client_ids()]
            if isinstance(args, str):
                return [self.options.render_id(client_id) for client_id in self.store.find_by_login(args)]
            raise ProcessError(Code.BAD_ARGUMENT, "GetClients takes no argument or a login")
        if args is not None:
            raise ProcessError(Code.BAD_ARGUMENT, f"{name} takes no argument")
        return list(self.store.catalogue_ids("tariff" if name == "GetTariffs" else "service"))
