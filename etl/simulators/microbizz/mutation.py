"""Edits a tenant's users make between two syncs: one function per table.

Each takes a random stream and a copy of a row and returns the edited row, or
None when the record is not editable (a processed invoice line is locked).
A few edits close or delete the record, so a sync also sees those flags flip.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

Row = dict[str, Any]


def edit_customer(r: random.Random, row: Row) -> Row:
    """Rename, re-address, new phone or e-mail; now and then closed or deleted."""
    roll = r.random()
    if roll < 0.3:
        row["name"] = row["name"].strip().title() if r.random() < 0.5 else f"{row['name']} (ny)"
    elif roll < 0.5:
        row["address"] = f"{row['address'].rsplit(' ', 1)[0]} {r.randint(1, 180)}"
    elif roll < 0.7:
        row["phone"] = f"+45{r.randrange(20_000_000, 99_999_999)}"
    elif roll < 0.9:
        row["email"] = row["email"].strip().lower() or f"info{r.randrange(10**6)}@mail.example"
    elif roll < 0.96:
        row["closed"] = not row["closed"]
    else:
        row["deleted"] = True
    return row


def edit_user(r: random.Random, row: Row) -> Row:
    """New phone or title; now and then an employee leaves (closed)."""
    roll = r.random()
    if roll < 0.45:
        row["phone"] = f"+45{r.randrange(20_000_000, 99_999_999)}"
    elif roll < 0.9:
        row["title"] = r.choice(("Technician", "Installer", "Dispatcher", "Sales", "Support", "Team lead"))
    else:
        row["closed"] = not row["closed"]
    return row


def edit_product(r: random.Random, row: Row) -> Row:
    """A price change of up to 15 % either way, a renamed item, or a retired one."""
    roll = r.random()
    if roll < 0.6:
        row["price"] = round(row["price"] * (1 + r.choice((-1, 1)) * r.uniform(0.01, 0.15)), 2)
    elif roll < 0.9:
        row["name"] = f"{row['name']} v{r.randint(2, 4)}"
    elif roll < 0.97:
        row["closed"] = True
    else:
        row["deleted"] = True
    return row


def edit_todo(r: random.Random, row: Row) -> Row:
    """Rescheduled, re-titled or set in progress."""
    roll = r.random()
    if roll < 0.4 and row["enddate"] is not None:
        row["enddate"] = row["enddate"] + timedelta(days=r.randint(1, 7))
    elif roll < 0.7:
        row["title"] = f"{row['title']} (follow-up)"
    elif not row["closed"]:
        row["stateid"] = 2
    else:
        row["description"] = f"{row['description']} Checked again.".strip()
    return row


def edit_invoice_line(r: random.Random, row: Row) -> Row | None:
    """A pending line gets another quantity or a clarified text; processed lines are locked."""
    if row["processed"]:
        return None
    if r.random() < 0.6:
        row["quantity"] = float(max(1, int(row["quantity"]) + r.choice((-1, 1, 2))))
    else:
        row["text"] = f"{row['text']} (adjusted)"
    return row


EDITS: dict[str, Callable[[random.Random, Row], Row | None]] = {
    "customer": edit_customer,
    "user": edit_user,
    "product": edit_product,
    "todo": edit_todo,
    "invoiceline": edit_invoice_line,
}
