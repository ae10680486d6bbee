"""Handlers of the service functions: ``<type>`` lists, ``.edit``, ``.suspend``/``.resume``/``.delete``,
``<type>.order.param`` and the ``basket``.

Ordering follows the panel's wizard: ``sok=ok&clicked_button=finish`` completes it; with
``skipbasket=on`` the service is created and charged at once, otherwise it waits in the cart
until ``func=basket&clicked_button=pay|free&sok=ok``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from etl.simulators.billmanager.call import Call
from etl.simulators.billmanager.doc import BmError, Cell, Node, elem_node, form_doc, ok_doc
from etl.simulators.billmanager.rows import ITEM_STATUS, ORDER_PERIODS, BasketEntry, Item, day, money, stamp
from etl.simulators.billmanager.store import ITEMTYPES

Handler = Callable[[Call], Node]


def item_row(call: Call, item: Item) -> dict[str, Any]:
    """The service list columns; ``pricelist_id``/``account_id``/``ip``/``changedate`` are [guess] additions."""
    store = call.store
    plan = store.plans.get(item.pricelist_id)
    client = store.clients.get(item.account_id)
    label, color = ITEM_STATUS[item.status]
    return {
        "id": item.id,
        "name": item.name,
        "domain": item.domain,
        "ip": item.ip,
        "pricelist": plan.name if plan else "",
        "pricelist_id": item.pricelist_id,
        "account": client.name if client else "",
        "account_id": item.account_id,
        "createdate": day(item.created_at),
        "expiredate": day(item.expire_at),
        "period": item.period,
        "item_status": Cell(label, {"color": color}),
        "status": item.status,
        "cost": money(plan.price, plan.currency) if plan else "",
        "changedate": stamp(item.changed_at),
    }


def _visible_item(call: Call, itemtype: str, item_id: int) -> Item | None:
    item = call.store.items(itemtype).get(item_id)
    return item if item is not None and call.sees(item.account_id) else None


def listing(itemtype: str) -> Handler:
    """The ``<type>`` list handler."""

    def handler(call: Call) -> Node:
        """``func=<type>``: services of this type the caller may see, of client ``plid`` when given."""
        ids = call.owned_ids(call.store.items(itemtype), call.int_param("plid"))
        return call.listing(ids, lambda item_id: _render(call, itemtype, item_id))

    return handler


def _render(call: Call, itemtype: str, item_id: int) -> dict[str, Any] | None:
    item = call.store.items(itemtype).get(item_id)
    return None if item is None else item_row(call, item)


def edit(itemtype: str) -> Handler:
    """The ``<type>.edit`` handler."""

    def handler(call: Call) -> Node:
        """``func=<type>.edit&elid=``: the service form; ``sok=ok`` changes name, domain or (vds) ip."""
        elid = call.elid()
        item = _visible_item(call, itemtype, elid)
        if item is None:
            raise BmError("missed", "elid", f"Service {elid} not found")
        if not call.sok:
            return form_doc({"elid": elid} | {k: v for k, v in item_row(call, item).items() if not isinstance(v, Cell)})
        fields: dict[str, Any] = {}
        for field in ("name", "domain"):
            if field in call.params:
                fields[field] = call.param(field)
                if not fields[field]:
                    raise BmError("value", field, f"{field} must not be empty")
        if "ip" in call.params and itemtype == "vds":
            try:
                fields["ip"] = str(ipaddress.IPv4Address(call.param("ip")))
            except ValueError:
                raise BmError("value", "ip", f"Invalid IP address: {call.param('ip')!r}") from None
        call.store.items(itemtype).update(item.id, changed_at=call.store.now(), **fields)
        return ok_doc()

    return handler


def set_status(itemtype: str, status: int) -> Handler:
    """The ``<type>.suspend`` (status 3) or ``<type>.resume`` (status 2) handler."""

    def handler(call: Call) -> Node:
        """``func=<type>.suspend|resume&elid=1, 2``: every id must exist ([guess] else ``missed``/``elid``)."""
        ids = call.elids()
        missing = [item_id for item_id in ids if _visible_item(call, itemtype, item_id) is None]
        if missing:
            raise BmError("missed", "elid", f"Service {missing[0]} not found")
        now = call.store.now()
        for item_id in ids:
            call.store.items(itemtype).update(item_id, status=status, changed_at=now)
        return ok_doc()

    return handler


def delete(itemtype: str) -> Handler:
    """The ``<type>.delete`` handler."""

    def handler(call: Call) -> Node:
        """``func=<type>.delete&elid=``: deletes what exists; missing ids still answer ok, as the panel does."""
        for item_id in call.elids():
            if _visible_item(call, itemtype, item_id) is not None:
                call.store.items(itemtype).delete(item_id)
        return ok_doc()

    return handler


def order(itemtype: str) -> Handler:
    """The ``<type>.order.param`` handler."""

    def handler(call: Call) -> Node:
        """``func=<type>.order.param``: order a service for the client the caller acts as."""
        account_id = call.own_client()
        form = {"pricelist": call.param("pricelist"), "period": call.param("period") or 1}
        if not call.sok:
            return form_doc(form, _order_choices(call, itemtype))
        plan_id = call.int_param("pricelist")
        plan = None if plan_id is None else call.store.plans.get(plan_id)
        if plan is None or plan.itemtype != itemtype:
            raise BmError("value", "pricelist", f"No {itemtype} tariff {call.param('pricelist')!r}")
        period = call.int_param("period") or 1
        if period not in ORDER_PERIODS:
            raise BmError("value", "period", f"Invalid period: {period}")
        if call.param("clicked_button") != "finish":
            # [guess] without clicked_button=finish the wizard only moves to its next page; nothing changes
            return form_doc(form | {"step": "confirm"}, _order_choices(call, itemtype))
        if call.param("skipbasket") == "on":
            item = call.store.create_item(itemtype, account_id, plan.id, period)
            call.store.charge(account_id, plan.price * period)
            return ok_doc(item.id)
        entry = call.store.baskets.add(account_id, itemtype, plan.id, period)
        return ok_doc(entry.id, url="billmgr?func=basket")

    return handler


def _order_choices(call: Call, itemtype: str) -> dict[str, list[tuple[int, str]]]:
    plans = (call.store.plans.get(plan_id) for plan_id in call.store.plans.ids())
    return {
        "pricelist": [(plan.id, plan.name) for plan in plans if plan is not None and plan.itemtype == itemtype],
        "period": [(months, f"{months} month(s)") for months in ORDER_PERIODS],
    }


def basket(call: Call) -> Node:
    """``func=basket``: view the cart (``doc.list[0].elem``), or with ``sok=ok`` delete an entry / check out."""
    clicked = call.param("clicked_button")
    if not call.sok or not clicked:
        return _basket_view(call)
    account_id = call.own_client()
    if clicked == "delete":
        call.store.baskets.remove(account_id, call.int_param("id") or 0)
        return ok_doc()
    if clicked not in ("pay", "free"):
        raise BmError("value", "clicked_button", f"Unknown button: {clicked!r}")
    entries = call.store.baskets.of(account_id)
    if not entries:
        raise BmError("missed", "basket", "The cart is empty")  # [guess]
    cart_id = call.int_param("id")
    if cart_id is not None and cart_id != entries[0].cart_id and cart_id not in {e.id for e in entries}:
        raise BmError("missed", "id", f"Cart {cart_id} not found")
    doc = ok_doc()
    for entry in call.store.baskets.take(account_id):
        item = call.store.create_item(entry.itemtype, account_id, entry.pricelist_id, entry.period)
        plan = call.store.plans.get(entry.pricelist_id)
        if clicked == "pay" and plan is not None:
            call.store.charge(account_id, plan.price * entry.period)
        doc.add("id", item.id)
    return doc


def _basket_view(call: Call) -> Node:
    doc = Node("doc")
    cart = doc.add("list", name="basket")
    account_id = call.principal.account_id if call.principal else 0
    for entry in call.store.baskets.of(account_id):
        cart.children.append(elem_node(_basket_row(call, entry), omit_empty=call.options.omit_empty_fields))
    return doc


def _basket_row(call: Call, entry: BasketEntry) -> dict[str, Any]:
    plan = call.store.plans.get(entry.pricelist_id)
    return {
        "id": entry.id,
        "cartid": entry.cart_id,
        "itemtype": entry.itemtype,
        "pricelist": plan.name if plan else "",
        "pricelist_id": entry.pricelist_id,
        "period": entry.period,
        "cost": money(plan.price * entry.period, plan.currency) if plan else "",
    }


def service_funcs() -> dict[str, Handler]:
    """Every service function of every item type."""
    funcs: dict[str, Handler] = {"basket": basket}
    for itemtype in ITEMTYPES:
        funcs[itemtype] = listing(itemtype)
        funcs[f"{itemtype}.edit"] = edit(itemtype)
        funcs[f"{itemtype}.suspend"] = set_status(itemtype, 3)
        funcs[f"{itemtype}.resume"] = set_status(itemtype, 2)
        funcs[f"{itemtype}.delete"] = delete(itemtype)
        funcs[f"{itemtype}.order.param"] = order(itemtype)
    return funcs
