"""The MikroBILL database behind the API: clients, accounts, tariffs, services, money log.

Rows are generated on demand from the world (deterministic per customer) and
kept in a small LRU cache; writes through the API and :meth:`ClientStore.mutate`
go to a per-client overlay, so memory grows with edits, not with the population.

Source ids (documented choice, shaped like the manual's examples):

- client id (``users_list.shortguid``), 15 digits: ``6338241`` followed by the world
  customer id zero-padded to 8 digits, i.e. ``633824100000000 + customer_id``;
- account GUID, 14 digits: ``28236`` followed by the world account id zero-padded to
  9 digits, i.e. ``28236000000000 + account_id``; accounts created through
  ``AddAccount`` get ``28239000000000 + n`` (n = 1, 2, ...) and negative true ids,
  because the world does not know them;
- tariff and service ids (``system_objects``) are the world product ids;
- money-log ``uid`` is the world payment id.

MikroBILL keeps no change timestamps that the API exposes, so an incremental
reader has to scan everything and compare; :meth:`ClientStore.mutate` changes
values only.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache

from etl.simulators import names
from etl.simulators.noise import spell
from etl.simulators.world import CENT, Customer, Product, TruthRow, World, rng_for

SYSTEM = "mikrobill"
CLIENT_ID_BASE = 633_824_100_000_000
ACCOUNT_GUID_BASE = 28_236_000_000_000
ADDED_GUID_BASE = 28_239_000_000_000
MAX_CUSTOMER_ID = 10**8 - 1
# Account fields the API reads and writes as strings, by their API property name.
ACCOUNT_FIELDS = {"IP": "ip", "MAC": "mac", "Login": "login", "Password": "password"}
# [guess] Router interfaces a client's traffic defaults to; the real values are installation names.
INTERFACES = ("ether2", "ether3", "ether4", "sfp-sfpplus1", "wlan1")
# [guess] BlockReason values other than -1 (active); the real enumeration is in the unreachable class reference.
BLOCK_NONE, BLOCK_NEGATIVE_BALANCE, BLOCK_BY_OPERATOR = -1, 0, 1
# system_objects.object_type (protocols.md §2.4).
OBJECT_TYPES = {"tariff": 0, "service": 3}
# Position of each kind in the world's ``product_id % 3`` rule.
_KIND_RESIDUE = {"tariff": 0, "service": 1}
_METHODS = ("cash", "card", "bank")


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One login of a client (an ``AutorizeInfo.Accounts`` entry)."""

    guid: int
    account_id: int
    login: str
    password: str
    ip: str
    mac: str
    tariff_id: int
    blocked: bool


@dataclass(frozen=True, slots=True)
class ClientRow:
    """A client as the world renders it, before any edit."""

    client_id: int
    customer: Customer
    name: str
    money: Decimal
    interface: str
    accounts: tuple[AccountRow, ...]


@dataclass(slots=True)
class ClientEdits:
    """What API writes and :meth:`ClientStore.mutate` changed on one client."""

    name: str | None = None
    money: Decimal | None = None
    accounts: dict[int, dict[str, str]] = field(default_factory=dict)
    added: list[AccountRow] = field(default_factory=list)


class ClientStore:
    """Clients of one installation: world rows plus an overlay of edits."""

    def __init__(self, world: World | None) -> None:
        self.world = world
        self.members: array = world.members(SYSTEM) if world else array("l")
        self._edits: dict[int, ClientEdits] = {}
        self._added_count = 0
        self._readdressed = 0
        self._row = lru_cache(maxsize=4096)(self._build_row)

    # -- clients ---------------------------------------------------------
    def client_ids(self) -> Iterator[int]:
        """Every client id, ascending."""
        return (CLIENT_ID_BASE + customer_id for customer_id in self.members)

    def find(self, client_id: int) -> ClientRow | None:
        """The client with this id, or ``None``."""
        customer_id = client_id - CLIENT_ID_BASE
        if not 1 <= customer_id <= MAX_CUSTOMER_ID:
            return None
        at = bisect_left(self.members, customer_id)
        if at == len(self.members) or self.members[at] != customer_id:
            return None
        return self._row(customer_id)

    def _build_row(self, customer_id: int) -> ClientRow:
        assert self.world is not None  # members is empty without a world
        customer = self.world.customer(customer_id)
        spelled = spell(self.world.seed, customer, SYSTEM)
        world_accounts = self.world.accounts_of(customer)
        accounts = tuple(
            AccountRow(
                guid=ACCOUNT_GUID_BASE + account.id,
                account_id=account.id,
                login=account.login,
                password=account.password,
                ip=account.ip,
                mac=account.mac,
                tariff_id=account.product_id,
                blocked=account.blocked,
            )
            for account in world_accounts
        )
        money = sum((account.balance for account in world_accounts), Decimal(0))
        return ClientRow(
            client_id=CLIENT_ID_BASE + customer_id,
            customer=customer,
            name=spelled.display_name,
            money=money.quantize(CENT),
            interface=INTERFACES[customer_id % len(INTERFACES)],
            accounts=accounts,
        )

    def _edits_of(self, row: ClientRow) -> ClientEdits | None:
        return self._edits.get(row.client_id)

    def _editable(self, row: ClientRow) -> ClientEdits:
        return self._edits.setdefault(row.client_id, ClientEdits())

    def name(self, row: ClientRow) -> str:
        """``AutorizeInfo.Name``: "<first> <last>" or the company name."""
        edits = self._edits_of(row)
        return edits.name if edits and edits.name is not None else row.name

    def money(self, row: ClientRow) -> Decimal:
        """``BillingInfo.Money``: the balance."""
        edits = self._edits_of(row)
        return edits.money if edits and edits.money is not None else row.money

    def accounts(self, row: ClientRow) -> list[AccountRow]:
        """The client's accounts, world ones first, then those added through the API."""
        edits = self._edits_of(row)
        if edits is None:
            return list(row.accounts)
        merged = [*row.accounts, *edits.added]
        return [replace(a, **edits.accounts[a.guid]) if a.guid in edits.accounts else a for a in merged]

    def account(self, row: ClientRow, guid: int) -> AccountRow | None:
        """One account of this client by GUID, or ``None`` (also for another client's GUID)."""
        return next((account for account in self.accounts(row) if account.guid == guid), None)

    def block_reason(self, row: ClientRow) -> int:
        """``StatusInfo.BlockReason``: -1 while active."""
        if not any(account.blocked for account in row.accounts):
            return BLOCK_NONE
        return BLOCK_NEGATIVE_BALANCE if self.money(row) < 0 else BLOCK_BY_OPERATOR

    def tariff_id(self, row: ClientRow) -> int:
        """``BillingInfo.Tariff``: the tariff of the client's first account (0 = none)."""
        accounts = self.accounts(row)
        return accounts[0].tariff_id if accounts else 0

    def speed_limit_in(self, row: ClientRow) -> int:
        """``StatusInfo.CurrentSpeedLimitIn`` in kbit/s [guess]: the tariff's speed, 0 while blocked."""
        if self.block_reason(row) != BLOCK_NONE:
            return 0
        tariff = self.catalogue_item("tariff", self.tariff_id(row))
        digits = re.search(r"\d+", tariff.label) if tariff else None
        return int(digits.group()) * 1024 if digits else 0

    def find_by_login(self, login: str) -> list[int]:
        """Client ids owning an account with exactly this login (a full scan, like a search)."""
        found = []
        for client_id in self.client_ids():
            row = self.find(client_id)
            if row and any(account.login == login for account in self.accounts(row)):
                found.append(client_id)
        return found

    # -- writes ------------------------------------------------------------
    def set_name(self, row: ClientRow, name: str) -> None:
        """Rename a client."""
        self._editable(row).name = name

    def set_account_field(self, row: ClientRow, guid: int, api_field: str, value: str) -> None:
        """Write one of :data:`ACCOUNT_FIELDS` on an existing account of this client."""
        self._editable(row).accounts.setdefault(guid, {})[ACCOUNT_FIELDS[api_field]] = value

    def add_account(self, row: ClientRow, ip: str, mac: str, login: str, password: str) -> AccountRow:
        """Create an account; it has no tariff yet (0) and a negative true id."""
        self._added_count += 1
        account = AccountRow(
            guid=ADDED_GUID_BASE + self._added_count,
            account_id=-self._added_count,
            login=login,
            password=password,
            ip=ip,
            mac=mac,
            tariff_id=0,
            blocked=False,
        )
        self._editable(row).added.append(account)
        return account

    # -- money log -----------------------------------------------------------
    def payments(self, row: ClientRow, render_id: Callable[[int], int | str] = int) -> list[dict[str, object]]:
        """The client's ``moneys`` rows, oldest first; ``actball`` ends at the current balance."""
        assert self.world is not None
        payments = sorted(self.world.payments_of(row.customer), key=lambda p: (p.created_at, p.id))
        balance_after = self.money(row)
        rows: list[dict[str, object]] = []
        for payment in reversed(payments):
            rows.append(
                {
                    "user_name": render_id(row.client_id),
                    "moneytime": int(payment.created_at.timestamp() * 1000),
                    "cash": f"{payment.amount:.2f}",
                    "cash_name": payment.currency,
                    "value1": f"Payment via {payment.method}",
                    "actball": f"{balance_after:.2f}",
                    "uid": payment.id,
                    "actionid": 1,
                    "actionsubid": _METHODS.index(payment.method),
                    "moneytype": 0,
                }
            )
            balance_after -= payment.amount
        rows.reverse()
        return rows

    # -- catalogue ([guess] paths) -------------------------------------------
    def catalogue_ids(self, kind: str) -> list[int]:
        """Ids of every tariff or service (world products of that kind)."""
        if self.world is None:
            return []
        first = _KIND_RESIDUE[kind] or 3
        return list(range(first, self.world.product_count + 1, 3))

    def catalogue_item(self, kind: str, item_id: int) -> Product | None:
        """One tariff or service by id, or ``None``."""
        if self.world is None or not 1 <= item_id <= self.world.product_count:
            return None
        if item_id % 3 != _KIND_RESIDUE[kind]:
            return None
        return self.world.product(item_id)

    # -- what a user editing records does -------------------------------------
    def mutate(self, fraction: float, seed: int) -> int:
        """Rename, re-address or re-balance that fraction of clients (one edit each); returns how many."""
        r = rng_for(seed, SYSTEM, "mutate")
        count = min(len(self.members), round(len(self.members) * fraction))
        for index in r.sample(range(len(self.members)), count):
            row = self._row(self.members[index])
            edit = r.randrange(3)
            if edit == 0:
                self.set_name(row, self._renamed(row, r.randrange(1 << 30)))
            elif edit == 1 and self.accounts(row):
                self._readdressed += 1
                self.set_account_field(row, self.accounts(row)[0].guid, "IP", _cgnat_address(self._readdressed))
            else:
                # A non-zero correction, so every chosen client really changes.
                delta = Decimal(r.randrange(1, 10_000)) / 100 * r.choice((1, -1))
                self._editable(row).money = self.money(row) + delta
        return count

    def _renamed(self, row: ClientRow, draw: int) -> str:
        """A person takes another last name; a company's name gets retyped in another case."""
        current = self.name(row)
        if row.customer.is_company:
            return current.title() if current.isupper() else current.upper()
        first = current.split(" ", 1)[0]
        choices = [last for last in names.LAST[row.customer.locale] if last not in current]
        last = choices[draw % len(choices)]
        return f"{first} {names.transliterate(last) if first.isascii() else last}"

    def truth(self) -> Iterator[TruthRow]:
        """Every client, account, tariff, service and money-log row served now, with its true id."""
        for client_id in self.client_ids():
            row = self.find(client_id)
            assert row is not None
            yield TruthRow(SYSTEM, "customer", str(client_id), row.customer.id)
            for account in self.accounts(row):
                yield TruthRow(SYSTEM, "account", str(account.guid), account.account_id)
            for payment in self.world.payments_of(row.customer) if self.world else ():
                yield TruthRow(SYSTEM, "payment", str(payment.id), payment.id)
        for kind in OBJECT_TYPES:
            for item_id in self.catalogue_ids(kind):
                yield TruthRow(SYSTEM, "product", str(item_id), item_id)


def _cgnat_address(n: int) -> str:
    """The ``n``-th address of 100.64.0.0/10, where an operator moves re-addressed clients."""
    return f"100.{64 + (n >> 16 & 63)}.{n >> 8 & 255}.{n & 255}"
