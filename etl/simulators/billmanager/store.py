"""The simulated BILLmanager database: the world's ``billmanager`` members, rendered on demand.

Source ids are sequential integers per entity (what the ETL sees as ``id``):

- client (``account``): ``1..N`` over ``world.members("billmanager")`` in ascending customer id;
  clients created through the API continue at ``N+1``.
- user: ``1`` is the admin; ``2..N+1`` is the one login of client ``id - 1``; created logins continue after.
- pricelist: ``1..K`` over the world products of kind ``tariff`` (itemtype ``vds``) and ``service``
  (itemtype ``soft``), in ascending product id.
- payment: ``1..P`` client by client, each client's ``world.payments_of`` in order; created ones after.
- vds: ``1..V`` the same way over ``world.accounts_of`` (one service per ISP account, with its IP and tariff).
- soft: ``1..S`` the same way over the service-kind lines of ``world.orders_of``.
- basket entries and carts: ``1..`` in order of creation.

The payment, vds and soft tables are indexed on first use (one pass over the members), so the app
starts in about the time ``world.members`` takes.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property

from etl.simulators.billmanager.options import BillmanagerOptions
from etl.simulators.billmanager.rows import (
    PAYMETHOD_BY_METHOD,
    BasketEntry,
    Client,
    Item,
    Login,
    Payment,
    Plan,
    pool_ip,
)
from etl.simulators.billmanager.tables import Baskets, OwnedTable, Table
from etl.simulators.noise import spell
from etl.simulators.world import EPOCH, Customer, Product, World

SYSTEM = "billmanager"
ITEMTYPES = ("vds", "soft")
ITEMTYPE_OF_KIND = {"tariff": "vds", "service": "soft"}
SOFT_STATUS_OF_ORDER = {0: 1, 1: 5, 3: 2}  # draft -> ordered, validated -> processing, closed -> active
YEAR = timedelta(days=365)


def login_name(email: str, client_id: int) -> str:
    """A client's login: its e-mail, trimmed and lower-cased, or ``client<id>`` when it has none."""
    return email.strip().lower() or f"client{client_id}"


def reseller_owns(customer_id: int) -> bool:
    """[guess] One world client in seven belongs to the reseller's project."""
    return customer_id % 7 == 0


class Store:
    """Clients, logins, tariffs, payments and services of one simulated installation."""

    def __init__(self, world: World | None, options: BillmanagerOptions) -> None:
        self.world = world
        self.options = options
        self.seed = world.seed if world is not None else 0
        self.members: array = world.members(SYSTEM) if world is not None else array("l")
        self.clients: Table[Client] = Table(len(self.members), self._client)
        self.users: Table[Login] = Table(len(self.members) + 1, self._login)
        self.baskets = Baskets(BasketEntry)
        self.ip_sequence = 0
        self._login_index: dict[str, int] | None = None

    def now(self) -> datetime:
        """The injectable clock as an aware UTC datetime."""
        return datetime.fromtimestamp(self.options.clock(), UTC)

    # -- clients and logins ----------------------------------------------
    def customer_of(self, client_id: int) -> Customer:
        """The true customer behind a world-derived client."""
        assert self.world is not None
        return self.world.customer(self.members[client_id - 1])

    def _client(self, client_id: int) -> Client:
        assert self.world is not None
        customer = self.customer_of(client_id)
        spelled = spell(self.seed, customer, SYSTEM)
        accounts = self.world.accounts_of(customer)
        return Client(
            id=client_id,
            customer_id=customer.id,
            name=spelled.company or f"{spelled.first_name} {spelled.last_name}",
            email=spelled.email,
            phone=spelled.phone,
            country=customer.country_code,
            project=self.options.reseller_project if reseller_owns(customer.id) else 1,
            balance=sum((account.balance for account in accounts), Decimal(0)),
            status=2 if all(account.blocked for account in accounts) else 1,
            created_at=customer.created_at,
            changed_at=customer.created_at,
        )

    def project_of(self, client_id: int) -> int:
        """A client's project without rendering the client."""
        if client_id in self.clients.created:
            return self.clients.created[client_id].project
        patched = self.clients.overlay.get(client_id, {}).get("project")
        if patched is not None:
            return patched
        return self.options.reseller_project if reseller_owns(self.members[client_id - 1]) else 1

    def _login(self, user_id: int) -> Login:
        if user_id == 1:
            return Login(
                1,
                0,
                self.options.username,
                "admin@billing.example",
                "Administrator",
                "",
                "admin",
                self.options.password,
                EPOCH,
                EPOCH,
            )
        client_id = user_id - 1
        customer = self.customer_of(client_id)
        spelled = spell(self.seed, customer, SYSTEM)
        return Login(
            id=user_id,
            account_id=client_id,
            name=login_name(spelled.email, client_id),
            email=spelled.email,
            realname=f"{spelled.first_name} {spelled.last_name}",
            phone=spelled.phone,
            level="user",
            password=self.options.client_password,
            created_at=customer.created_at,
            changed_at=customer.created_at,
        )

    def login_by_name(self, name: str) -> Login | None:
        """The login called ``name`` (case-insensitive).

        Seeded logins are e-mails carrying the customer number, so the few logins those digits
        point at are tried first; only when none of them matches is every login indexed.
        """
        key = name.strip().lower()
        if self._login_index is None:
            for user_id in self._likely_logins(key):
                login = self.users.get(user_id)
                if login is not None and login.name.lower() == key:
                    return login
            self._build_login_index()
        assert self._login_index is not None
        user_id = self._login_index.get(key)
        return None if user_id is None else self.users.get(user_id)

    def _likely_logins(self, key: str) -> Iterator[int]:
        yield from (user_id for user_id, login in self.users.created.items() if login.name.lower() == key)
        for digits in re.findall(r"\d+", key):
            number = int(digits)
            position = bisect_left(self.members, number)
            if position < len(self.members) and self.members[position] == number:
                yield position + 2  # the login of the client holding that customer
            yield number + 1  # ``client<id>``, the login of a client without an e-mail

    def _build_login_index(self) -> None:
        if self._login_index is None:
            index: dict[str, int] = {}
            for user_id in self.users.ids():
                login = self.users.get(user_id)
                assert login is not None
                index[login.name.lower()] = user_id
            self._login_index = index

    def save_login(self, user_id: int | None, **fields: object) -> Login:
        """Create (``user_id`` None) or update a login, keeping the name index current."""
        old = None if user_id is None else self.users.get(user_id)
        if user_id is None:
            now = self.now()
            values = {"level": "user", "password": self.options.client_password, "created_at": now} | fields
            login = self.users.add(lambda new_id: Login(id=new_id, changed_at=now, **values))  # type: ignore[arg-type]
        else:
            self.users.update(user_id, changed_at=self.now(), **fields)
            login = self.users.get(user_id)
            assert login is not None
        if self._login_index is not None:
            if old is not None:
                self._login_index.pop(old.name.lower(), None)
            self._login_index[login.name.lower()] = login.id
        return login

    def create_client(
        self, name: str, email: str, phone: str, country: str, project: int, password: str | None = None
    ) -> Client:
        """A new client and, when it has an e-mail, its login (the e-mail is the login, as in the panel)."""
        now = self.now()
        client = self.clients.add(
            lambda new_id: Client(new_id, 0, name, email, phone, country, project, Decimal(0), 1, now, now)
        )
        if email.strip():
            self.save_login(
                None,
                account_id=client.id,
                name=login_name(email, client.id),
                email=email,
                realname=name,
                phone=phone,
                password=password or self.options.client_password,
            )
        return client

    @cached_property
    def world_emails(self) -> dict[str, int]:
        """True e-mail -> customer id over the whole world, to tie clients created through the API to the truth."""
        if self.world is None:
            return {}
        return {customer.email.lower(): customer.id for customer in self.world.customers()}

    # -- catalogue -------------------------------------------------------
    @cached_property
    def catalogue(self) -> list[Product]:
        """World products sold as services, in ascending product id (pricelist ``k`` is entry ``k-1``)."""
        if self.world is None:
            return []
        return [product for product in self.world.products() if product.kind in ITEMTYPE_OF_KIND]

    @cached_property
    def plan_of_product(self) -> dict[int, int]:
        """World product id -> pricelist id."""
        return {product.id: index + 1 for index, product in enumerate(self.catalogue)}

    @cached_property
    def plans(self) -> Table[Plan]:
        """The ``pricelist`` table."""
        return Table(len(self.catalogue), self._plan)

    def _plan(self, plan_id: int) -> Plan:
        product = self.catalogue[plan_id - 1]
        return Plan(
            plan_id,
            product.id,
            product.label,
            product.price,
            product.currency,
            ITEMTYPE_OF_KIND[product.kind],
            product.created_at,
            product.created_at,
        )

    # -- payments --------------------------------------------------------
    @cached_property
    def payments(self) -> OwnedTable[Payment]:
        """The ``payment`` table, indexed on first use (status, creation time and world id per row)."""
        start, status, created, true = array("l", [0]), array("b"), array("q"), array("q")
        if self.world is not None:
            for customer_id in self.members:
                for payment in self.world.payments_of(self.world.customer(customer_id)):
                    status.append(payment.status)
                    created.append(int(payment.created_at.timestamp()))
                    true.append(payment.id)
                start.append(len(true))
        return OwnedTable(start, self._payment, {"status": status, "created": created, "true": true})

    def _payment(self, payment_id: int) -> Payment:
        assert self.world is not None
        client_id, n = self.payments.position(payment_id)
        payment = self.world.payments_of(self.customer_of(client_id))[n]
        return Payment(
            id=payment_id,
            account_id=client_id,
            number=f"{payment.created_at:%Y}-{payment_id:06d}",
            amount=payment.amount,
            currency=payment.currency,
            paymethod_id=PAYMETHOD_BY_METHOD[payment.method],
            status=payment.status,
            created_at=payment.created_at,
            changed_at=payment.created_at,
            true_id=payment.id,
        )

    # -- services --------------------------------------------------------
    def items(self, itemtype: str) -> OwnedTable[Item]:
        """The service table of one item type."""
        return self.vds if itemtype == "vds" else self.soft

    @cached_property
    def vds(self) -> OwnedTable[Item]:
        """The ``vds`` table: one service per world ISP account, indexed on first use."""
        start, true = array("l", [0]), array("q")
        if self.world is not None:
            for customer_id in self.members:
                true.extend(account.id for account in self.world.accounts_of(self.world.customer(customer_id)))
                start.append(len(true))
        return OwnedTable(start, self._vds, {"true": true})

    def _vds(self, item_id: int) -> Item:
        assert self.world is not None
        client_id, n = self.vds.position(item_id)
        account = self.world.accounts_of(self.customer_of(client_id))[n]
        return Item(
            id=item_id,
            itemtype="vds",
            account_id=client_id,
            pricelist_id=self.plan_of_product[account.product_id],
            name=account.login,
            domain=f"{account.login}.vds.example",
            ip=account.ip,
            status=3 if account.blocked else 2,
            period=1,
            created_at=account.created_at,
            expire_at=account.created_at + YEAR,
            changed_at=account.created_at,
            true_id=account.id,
        )

    @cached_property
    def soft(self) -> OwnedTable[Item]:
        """The ``soft`` table: one service per service-kind order line, indexed on first use."""
        start, order_n, line_k, true = array("l", [0]), array("b"), array("b"), array("q")
        if self.world is not None:
            for customer_id in self.members:
                for n, order in enumerate(self.world.orders_of(self.world.customer(customer_id))):
                    for k, line in enumerate(order.lines):
                        plan_id = self.plan_of_product.get(line.product_id)
                        if plan_id and self.catalogue[plan_id - 1].kind == "service":
                            order_n.append(n)
                            line_k.append(k)
                            true.append(order.id)
                start.append(len(true))
        return OwnedTable(start, self._soft, {"order": order_n, "line": line_k, "true": true})

    def _soft(self, item_id: int) -> Item:
        assert self.world is not None
        client_id, _ = self.soft.position(item_id)
        order = self.world.orders_of(self.customer_of(client_id))[self.soft.columns["order"][item_id - 1]]
        line = order.lines[self.soft.columns["line"][item_id - 1]]
        plan_id = self.plan_of_product[line.product_id]
        return Item(
            id=item_id,
            itemtype="soft",
            account_id=client_id,
            pricelist_id=plan_id,
            name=self.catalogue[plan_id - 1].label,
            domain="",
            ip="",
            status=SOFT_STATUS_OF_ORDER.get(order.status, 2),
            period=12,
            created_at=order.date,
            expire_at=order.date + YEAR,
            changed_at=order.date,
            true_id=order.id,
        )

    def create_item(self, itemtype: str, client_id: int, plan_id: int, period: int) -> Item:
        """A service ordered through the panel: active at once, with a fresh address for a vds."""
        now = self.now()
        plan = self.plans.get(plan_id)
        assert plan is not None
        ip = self.next_ip() if itemtype == "vds" else ""
        return self.items(itemtype).add(
            lambda new_id: Item(
                id=new_id,
                itemtype=itemtype,
                account_id=client_id,
                pricelist_id=plan_id,
                name=f"{itemtype}{new_id}",
                domain=f"{itemtype}{new_id}.{itemtype}.example" if itemtype == "vds" else "",
                ip=ip,
                status=2,
                period=period,
                created_at=now,
                expire_at=now + timedelta(days=30 * period),
                changed_at=now,
                true_id=0,
            )
        )

    def next_ip(self) -> str:
        """The next unused address of the simulator's own pool."""
        self.ip_sequence += 1
        return pool_ip(self.ip_sequence)

    def charge(self, client_id: int, amount: Decimal) -> None:
        """Take ``amount`` off a client's balance (it may go negative: [guess] no credit check)."""
        client = self.clients.get(client_id)
        if client is not None:
            self.clients.update(client_id, balance=client.balance - amount, changed_at=self.now())
