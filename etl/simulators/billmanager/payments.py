"""Handlers of ``payment``, ``payment.edit`` and ``paymethod``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from etl.simulators.billmanager.call import Call
from etl.simulators.billmanager.doc import BmError, Node, form_doc, ok_doc
from etl.simulators.billmanager.functions import visible_client
from etl.simulators.billmanager.rows import PAYMETHODS, Payment, day, money, stamp


def payment_row(call: Call, payment: Payment) -> dict[str, Any]:
    """The ``payment`` list columns; ``account_id`` is [guess] (the panel shows only names)."""
    client = call.store.clients.get(payment.account_id)
    name = client.name if client else ""
    recipient = call.options.projects.get(client.project, "") if client else ""
    amount = money(payment.amount, payment.currency)
    return {
        "id": payment.id,
        "number": payment.number,
        "create_date": day(payment.created_at),
        "sender_name": name,
        "recipient_name": recipient,
        "account_name": name,
        "account_id": payment.account_id,
        "paymethod_name": PAYMETHODS[payment.paymethod_id - 1][2],
        "subaccountamount_iso": amount,
        "paymethodamount_iso": amount,
        "status": payment.status,
        "changedate": stamp(payment.changed_at),
    }


def payment(call: Call) -> Node:
    """``func=payment``: payments, of client ``plid`` when given, narrowed by ``filter=on`` criteria."""
    ids = call.owned_ids(call.store.payments, call.int_param("plid"))
    if call.param("filter") == "on":
        ids = _filtered_payments(call, ids)
    return call.listing(ids, lambda payment_id: _payment_render(call, payment_id))


def _payment_render(call: Call, payment_id: int) -> dict[str, Any] | None:
    found = call.store.payments.get(payment_id)
    return None if found is None else payment_row(call, found)


def _date(call: Call, field: str, end: bool) -> float | None:
    raw = call.param(field)
    if not raw:
        return None
    try:
        moment = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise BmError("value", field, f"Invalid date: {raw!r}") from None
    return moment.timestamp() + (86400 if end else 0)


def _filtered_payments(call: Call, ids: Sequence[int]) -> list[int]:
    """``status`` and ``createdate=other&createdatestart=&createdateend=`` (inclusive days)."""
    status = call.int_param("status")
    if status is not None and not 1 <= status <= 7:
        raise BmError("value", "status", f"Invalid payment status: {status}")
    ranged = call.param("createdate") == "other"
    start = _date(call, "createdatestart", False) if ranged else None
    end = _date(call, "createdateend", True) if ranged else None
    table = call.store.payments
    kept = []
    for payment_id in ids:
        patch = table.overlay.get(payment_id, {})
        if payment_id <= table.base_count:
            row_status = patch.get("status", table.columns["status"][payment_id - 1])
            created = table.columns["created"][payment_id - 1]
        else:
            row = table.created[payment_id]
            row_status, created = row.status, row.created_at.timestamp()
        if status is not None and row_status != status:
            continue
        if (start is not None and created < start) or (end is not None and created >= end):
            continue
        kept.append(payment_id)
    return kept


def _amount(call: Call, required: bool) -> Decimal | None:
    raw = call.param("amount")
    if not raw and not required:
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise BmError("value", "amount", f"Invalid amount: {raw!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise BmError("value", "amount", f"Invalid amount: {raw!r}")
    return amount


def _choice(call: Call, field: str, valid: range, required: bool) -> int | None:
    value = call.int_param(field)
    if (value is None and required) or (value is not None and value not in valid):
        raise BmError("value", field, f"Invalid {field}: {call.param(field)!r}")
    return value


def payment_edit(call: Call) -> Node:
    """``func=payment.edit``: by ``elid`` (or ``plid`` + ``elname`` = number); ``sok=ok`` creates or updates."""
    found = _payment_target(call)
    if not call.sok:
        values = payment_row(call, found) if found else {"plid": call.param("plid"), "amount": "", "status": 1}
        slists = {"paymethod": [(pm[0], pm[2]) for pm in PAYMETHODS], "status": [(s, str(s)) for s in range(1, 8)]}
        return form_doc({"elid": found.id if found else ""} | values, slists)
    methods = range(1, len(PAYMETHODS) + 1)
    if found is None:
        client = visible_client(call, call.int_param("plid"), "plid")
        amount = _amount(call, True)
        method = _choice(call, "paymethod", methods, True)
        status = _choice(call, "status", range(1, 8), False) or 1
        now = call.store.now()
        created = call.store.payments.add(
            lambda new_id: Payment(
                new_id,
                client.id,
                call.param("number") or f"{now:%Y}-{new_id:06d}",
                amount,
                call.options.currency,
                method,
                status,
                now,
                now,
                0,
            )
        )
        return ok_doc(created.id)
    fields: dict[str, Any] = {}
    for field, value in (
        ("amount", _amount(call, False)),
        ("paymethod_id", _choice(call, "paymethod", methods, False)),
        ("status", _choice(call, "status", range(1, 8), False)),
    ):
        if value is not None:
            fields[field] = value
    call.store.payments.update(found.id, changed_at=call.store.now(), **fields)
    return ok_doc()


def _payment_target(call: Call) -> Payment | None:
    elid = call.int_param("elid")
    if elid is None and call.param("elname") and call.int_param("plid") is not None:
        table = call.store.payments
        for payment_id in call.owned_ids(table, call.int_param("plid")):
            candidate = table.get(payment_id)
            if candidate is not None and candidate.number == call.param("elname"):
                return candidate
        raise BmError("missed", "elname", f"Payment {call.param('elname')} not found")
    if elid is None:
        return None
    found = call.store.payments.get(elid)
    if found is None or not call.sees(found.account_id):
        raise BmError("missed", "elid", f"Payment {elid} not found")
    return found


def paymethod(call: Call) -> Node:
    """``func=paymethod``: the configured payment methods."""
    rows = {
        pm_id: {"id": pm_id, "name": name, "module": module, "currency_name": call.options.currency}
        for pm_id, _, name, module in PAYMETHODS
    }
    return call.listing(list(rows), rows.get)
