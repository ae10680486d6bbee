"""The tenant's records as the world seeds them, generated on demand.

Nothing here is stored per record: each base source renders record ``id`` from the
world whenever it is asked, and derives its change moment from a hash, so a tenant
of 100,000 customers starts in about a second. Writes live in the store's overlay.

Numeric id scheme (documented for the truth mapping and for tests):

- customer: ``1000 + world customer id`` (members of "microbizz" only);
- user (employee): ``100 + n`` for employee ``n = 1..user_count`` (not world entities);
- product: ``2000 + world product id``;
- invoice line: ``world order id * 4 + line index`` (order ids are ``customer * 4 + n``,
  so a line id is ``16 * customer + 4 * n + index``);
- todo: ``4 * world customer id + n`` for the customer's ``n``-th todo (0 to 3 per customer).

Records created through the API get ids counting up from just above the highest base id.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from etl.simulators import names
from etl.simulators.noise import spell
from etl.simulators.world import World, rng_for

SYSTEM = "microbizz"
CUSTOMER_OFFSET = 1000
USER_OFFSET = 100
PRODUCT_OFFSET = 2000
# Base records last changed somewhere in 2024: after every world creation date, before any real run.
BASE_CHANGED_FROM = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
BASE_CHANGED_SPAN = 365 * 86_400
_CUSTOMER_NUMBER = re.compile(r"^C(\d{7,})$")
_USER_TITLES = ("Technician", "Installer", "Dispatcher", "Sales", "Support", "Bookkeeper")


def unit(seed: int, *parts: object) -> float:
    """A deterministic draw in [0, 1) owned by ``parts``."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def base_second(seed: int, entity: str, record_id: int) -> int:
    """When a base record last changed (seconds since 1970 UTC)."""
    return BASE_CHANGED_FROM + int(unit(seed, "mbz-changed", entity, record_id) * BASE_CHANGED_SPAN)


class CustomerBase:
    """Customers present in Microbizz, spelled the way Microbizz spells them.

    Implements :class:`~etl.simulators.microbizz.store.BaseSource`.
    """

    entity = "customer"

    def __init__(self, world: World | None) -> None:
        self.world = world
        self.seed = world.seed if world else 0
        self.members = world.members(SYSTEM) if world else array("l")
        self.first_free_id = CUSTOMER_OFFSET + (world.scale if world else 0) + 1

    def contains(self, record_id: int) -> bool:
        cid = record_id - CUSTOMER_OFFSET
        pos = bisect_left(self.members, cid)
        return pos < len(self.members) and self.members[pos] == cid

    def ids(self) -> Iterator[int]:
        return (CUSTOMER_OFFSET + cid for cid in self.members)

    def change_keys(self) -> Iterator[tuple[int, int]]:
        return ((base_second(self.seed, self.entity, rid), rid) for rid in self.ids())

    def changed_second(self, record_id: int) -> int:
        return base_second(self.seed, self.entity, record_id)

    def true_id(self, record_id: int) -> int:
        return record_id - CUSTOMER_OFFSET

    def _numberless(self, cid: int) -> bool:
        return unit(self.seed, "mbz-numberless", cid) < 0.06

    def find_number(self, number: str) -> int | None:
        match = _CUSTOMER_NUMBER.match(number)
        if not match:
            return None
        rid = CUSTOMER_OFFSET + int(match[1])
        return rid if self.contains(rid) and not self._numberless(rid - CUSTOMER_OFFSET) else None

    def row(self, record_id: int) -> dict[str, Any] | None:
        if self.world is None or not self.contains(record_id):
            return None
        cid = record_id - CUSTOMER_OFFSET
        c = spell(self.seed, self.world.customer(cid), SYSTEM)
        person = f"{c.first_name} {c.last_name}"
        ean = ""
        if c.is_company and c.locale == "da" and unit(self.seed, "mbz-ean", cid) < 0.5:
            ean = "57" + str(int(unit(self.seed, "mbz-ean-digits", cid) * 10**11)).zfill(11)
        return {
            "customernumber": "" if self._numberless(cid) else c.customer_number,
            "name": c.company or person,
            "contact": person if c.company else "",
            "address": c.street,
            "zip": c.zip,
            "city": c.city,
            "country": c.country_code,
            "phone": c.phone,
            "email": c.email,
            "cvr": c.tax_id or "",
            "ean": ean,
            "type": "company" if c.is_company else "private",
            "closed": unit(self.seed, "mbz-closed", cid) < 0.03,
            "deleted": unit(self.seed, "mbz-deleted", cid) < 0.01,
        }


class UserBase:
    """The tenant's employees: a few dozen, drawn once (they are not world entities).

    Implements :class:`~etl.simulators.microbizz.store.BaseSource`.
    """

    entity = "user"

    def __init__(self, seed: int, count: int) -> None:
        self.seed = seed
        self.rows: dict[int, dict[str, Any]] = {}
        seen: set[str] = set()
        for n in range(1, count + 1):
            r = rng_for(seed, "mbz-user", n)
            first, last = r.choice(names.FIRST["da"]), r.choice(names.LAST["da"])
            code = (names.ascii_slug(first)[:1] + names.ascii_slug(last)[:2]).upper()
            code = next(f"{code}{k or ''}" for k in range(count + 1) if f"{code}{k or ''}" not in seen)
            seen.add(code)
            self.rows[USER_OFFSET + n] = {
                "usercode": code,
                "name": f"{first} {last}",
                "email": f"{code.lower()}@tenant.example",
                "phone": f"+45{r.randrange(20_000_000, 99_999_999)}",
                "title": r.choice(_USER_TITLES),
                "closed": r.random() < 0.08,
                "deleted": False,
            }
        self.first_free_id = USER_OFFSET + count + 1

    def contains(self, record_id: int) -> bool:
        return record_id in self.rows

    def ids(self) -> Iterator[int]:
        return iter(sorted(self.rows))

    def change_keys(self) -> Iterator[tuple[int, int]]:
        return ((base_second(self.seed, self.entity, rid), rid) for rid in self.ids())

    def changed_second(self, record_id: int) -> int:
        return base_second(self.seed, self.entity, record_id)

    def true_id(self, record_id: int) -> int:
        return record_id - USER_OFFSET

    def find_number(self, number: str) -> int | None:
        return next((rid for rid, row in self.rows.items() if row["usercode"] == number), None)

    def row(self, record_id: int) -> dict[str, Any] | None:
        row = self.rows.get(record_id)
        return dict(row) if row else None


class ProductBase:
    """The world's catalogue; product numbers are the world's refs.

    Implements :class:`~etl.simulators.microbizz.store.BaseSource`.
    """

    entity = "product"

    def __init__(self, world: World | None) -> None:
        self.world = world
        self.seed = world.seed if world else 0
        self.count = world.product_count if world else 0
        self.first_free_id = PRODUCT_OFFSET + self.count + 1
        self._by_ref: dict[str, int] | None = None

    def contains(self, record_id: int) -> bool:
        return 1 <= record_id - PRODUCT_OFFSET <= self.count

    def ids(self) -> Iterator[int]:
        return iter(range(PRODUCT_OFFSET + 1, PRODUCT_OFFSET + self.count + 1))

    def change_keys(self) -> Iterator[tuple[int, int]]:
        return ((base_second(self.seed, self.entity, rid), rid) for rid in self.ids())

    def changed_second(self, record_id: int) -> int:
        return base_second(self.seed, self.entity, record_id)

    def true_id(self, record_id: int) -> int:
        return record_id - PRODUCT_OFFSET

    def find_number(self, number: str) -> int | None:
        if self._by_ref is None:
            self._by_ref = {p.ref: PRODUCT_OFFSET + p.id for p in self.world.products()} if self.world else {}
        return self._by_ref.get(number)

    def row(self, record_id: int) -> dict[str, Any] | None:
        if self.world is None or not self.contains(record_id):
            return None
        p = self.world.product(record_id - PRODUCT_OFFSET)
        return {
            "productnumber": p.ref,
            "name": p.label,
            "description": "",
            "price": float(p.price),
            "costprice": round(float(p.price) * 0.6, 2),
            "unit": "md" if p.kind == "tariff" else "stk",
            "productgroup": p.kind,
            "vatrate": float(p.vat_rate),
            "closed": unit(self.seed, "mbz-closed-product", p.id) < 0.03,
            "deleted": unit(self.seed, "mbz-deleted-product", p.id) < 0.01,
        }
