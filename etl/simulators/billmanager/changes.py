"""Edits made "by people" between two ETL runs, and the truth behind every served record."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from etl.simulators.billmanager.rows import CENT
from etl.simulators.billmanager.store import ITEMTYPES, SYSTEM, Store
from etl.simulators.billmanager.tables import OwnedTable, Table
from etl.simulators.world import TruthRow

# Truth entity of each service type: a vds renders an ISP account, a soft item an order line.
ITEM_ENTITY = {"vds": "account", "soft": "order"}


def mutate(store: Store, fraction: float, seed: int) -> int:
    """Edit ``fraction`` of every table (names, balances, phones, prices, IPs, statuses); returns how many rows."""
    r = random.Random(seed)
    now = store.now()
    changed = _edit_sample(store.clients, fraction, r, now, lambda row: _client_edit(row, r))
    changed += _edit_sample(store.plans, fraction, r, now, lambda row: {"price": _repriced(row.price, r)})
    changed += _edit_sample(store.payments, fraction, r, now, lambda row: {"status": _next_status(row.status)})
    changed += _edit_sample(store.vds, fraction, r, now, lambda row: {"ip": store.next_ip()})
    changed += _edit_sample(store.soft, fraction, r, now, lambda row: {"status": 3 if row.status == 2 else 2})
    for user_id in _sample(store.users, fraction, r):
        login = store.users.get(user_id)
        if login is None or login.level == "admin":
            continue
        if r.random() < 0.5:
            store.save_login(user_id, realname=_renamed(login.realname, r))
        else:
            store.save_login(user_id, phone=f"+{r.randrange(10**9, 10**10)}")
        changed += 1
    return changed


def _sample(table: Table[Any], fraction: float, r: random.Random) -> list[int]:
    ids = table.ids()
    return r.sample(ids, round(len(ids) * max(0.0, min(1.0, fraction))))


def _edit_sample(
    table: Table[Any], fraction: float, r: random.Random, now: datetime, edit: Callable[[Any], dict[str, Any]]
) -> int:
    changed = 0
    for row_id in _sample(table, fraction, r):
        row = table.get(row_id)
        if row is not None:
            table.update(row_id, changed_at=now, **edit(row))
            changed += 1
    return changed


def _client_edit(row: Any, r: random.Random) -> dict[str, Any]:
    if r.random() < 0.5:
        return {"balance": row.balance + Decimal(r.choice((-1, 1)) * r.randrange(100, 5000)) / 100}
    return {"name": _renamed(row.name, r)}


def _renamed(name: str, r: random.Random) -> str:
    """A cosmetic correction someone would type: tidy spaces, fix or shout the case."""
    tidy = " ".join(name.split())
    candidates = [variant for variant in (tidy, tidy.title(), tidy.upper()) if variant != name]
    return r.choice(candidates) if candidates else f"{name} {r.randint(2, 9)}"


def _repriced(price: Decimal, r: random.Random) -> Decimal:
    return (price * Decimal(r.choice(("1.05", "1.10", "0.95")))).quantize(CENT)


def _next_status(status: int) -> int:
    """New and in-progress payments get credited; credited ones get refunded."""
    return 6 if status == 4 else 4


def truth(store: Store) -> Iterator[TruthRow]:
    """Every record served now, with its world id; 0 for records created through the API with no world entity."""
    for client_id in store.clients.ids():
        yield TruthRow(SYSTEM, "customer", str(client_id), _customer_of_client(store, client_id))
    for user_id in store.users.ids():
        if user_id == 1:
            # The admin's func=user lists the staff login too (no account_id): staged as a staff user.
            yield TruthRow(SYSTEM, "staff_user", "1", 0)
            continue
        login = store.users.get(user_id) if user_id > store.users.base_count else None
        account_id = user_id - 1 if login is None else login.account_id
        yield TruthRow(SYSTEM, "user", str(user_id), _customer_of_client(store, account_id))
    for plan_id in store.plans.ids():
        yield TruthRow(SYSTEM, "product", str(plan_id), store.catalogue[plan_id - 1].id)
    yield from _owned_truth(store.payments, "payment")
    for itemtype in ITEMTYPES:
        yield from _owned_truth(store.items(itemtype), ITEM_ENTITY[itemtype])


def _owned_truth(table: OwnedTable[Any], entity: str) -> Iterator[TruthRow]:
    true = table.columns["true"]
    for row_id in table.ids():
        yield TruthRow(SYSTEM, entity, str(row_id), true[row_id - 1] if row_id <= table.base_count else 0)


def _customer_of_client(store: Store, client_id: int) -> int:
    """World clients map by index; a created client maps to the world customer with its e-mail, if any."""
    if client_id <= store.clients.base_count:
        return store.members[client_id - 1]
    client = store.clients.get(client_id)
    if client is None or store.world is None:
        return 0
    return store.world_emails.get(client.email.strip().lower(), 0)
