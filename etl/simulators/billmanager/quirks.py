"""Quirks of real panels the simulator can turn on (protocols.md §4.5); see :class:`BillmanagerOptions`.

Each one reproduces something a live BILLmanager does that reads as a *shorter list* or a
*different error* rather than an outage: the logon form instead of a list, a function the
installation lacks or names differently, an ``authtype`` refusal, a row deleted while a
client pages through a list by offset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from etl.simulators.billmanager.call import Call
from etl.simulators.billmanager.doc import BmError, Node
from etl.simulators.billmanager.options import BillmanagerOptions
from etl.simulators.billmanager.store import Store
from etl.simulators.billmanager.tables import Table

Handler = Callable[[Call], Node]
# The panel's own words for a function no loaded module provides [C-code3p, protocols.md §4.5].
MISSED_FUNCTION = "Не удалось найти функцию '{func}'. Возможно, управляющий модуль не загружен."


def installed(options: BillmanagerOptions, funcs: Mapping[str, Handler], func: str) -> Handler | None:
    """The handler ``func`` reaches on this installation; a ``missed`` error when no module provides it.

    ``options.func_names`` moves a function to another name: the old name is then missing.
    None means the function is unknown in the older, configurable way (``unknown_func_error``).
    """
    renamed = {installed_as: usual for usual, installed_as in options.func_names.items()}
    if func in options.missing_funcs or (func in options.func_names and func not in renamed):
        raise BmError("missed", "", MISSED_FUNCTION.format(func=func))
    return funcs.get(renamed.get(func, func))


def logon_form() -> Node:
    """What a panel answers a call it will not serve to this session: its logon form, no error, no elem."""
    doc = Node("doc", attrs={"func": "logon"})
    doc.add("username", "")
    doc.add("password", "")
    return doc


def dead_session(options: BillmanagerOptions, message: str) -> BmError | Node:
    """An expired or unknown session: an ``auth`` error, or the logon form (``logon_form_on_expiry``)."""
    if options.logon_form_on_expiry:
        return logon_form()
    return BmError(options.auth_error_type, "auth", message)


def authtype_now(options: BillmanagerOptions, call_number: int) -> bool:
    """Whether this request (numbered from 1) answers ``$type: "authtype"`` (``authtype_on_calls``)."""
    return call_number in options.authtype_on_calls


def after_list_page(store: Store, call: Call, served: dict[str, int]) -> int | None:
    """Count a served list page of ``call.func``; after the k-th (``delete_row_after_page``) delete the
    list's first row, which page 1 already carried, so later pages shift back by one. The deleted id."""
    usual = {installed_as: usual for usual, installed_as in call.options.func_names.items()}.get(call.func, call.func)
    k = call.options.delete_row_after_page.get(usual)
    if k is None or not call.listed:
        return None
    served[usual] = served.get(usual, 0) + 1
    if served[usual] != k:
        return None
    table = _table_of(store, usual)
    row_id = call.listed[0]
    return row_id if table is not None and table.delete(row_id) else None


def _table_of(store: Store, func: str) -> Table[Any] | None:
    tables: dict[str, Callable[[], Table[Any]]] = {
        "account": lambda: store.clients,
        "user": lambda: store.users,
        "pricelist": lambda: store.plans,
        "payment": lambda: store.payments,
        "vds": lambda: store.vds,
        "soft": lambda: store.soft,
    }
    table = tables.get(func)
    return table() if table else None
