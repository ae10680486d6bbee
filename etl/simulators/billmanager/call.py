"""One function call: its parameters, who makes it, what that caller may see, and list paging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from etl.simulators.billmanager.auth import Principal
from etl.simulators.billmanager.doc import BmError, Node, list_doc
from etl.simulators.billmanager.options import BillmanagerOptions
from etl.simulators.billmanager.store import Store
from etl.simulators.billmanager.tables import OwnedTable

# Functions a client login may not call; lists among them may be truncated instead (options.denied_list_mode).
ADMIN_FUNCS = frozenset({"account", "account.edit", "payment.edit"})
ADMIN_SUFFIXES = (".suspend", ".resume", ".delete")


@dataclass
class Call:
    """The context a function handler gets."""

    store: Store
    options: BillmanagerOptions
    params: dict[str, str]
    func: str
    principal: Principal | None
    # Every id of the list this call answered a page of (before paging), for quirks that edit it.
    listed: Sequence[int] = field(default=())

    # -- parameters ------------------------------------------------------
    def param(self, name: str, default: str = "") -> str:
        return self.params.get(name, default).strip()

    @property
    def sok(self) -> bool:
        return self.param("sok") == "ok"

    def int_param(self, name: str, obj: str | None = None) -> int | None:
        """An integer parameter; None when absent or empty, a ``value`` error when not a number."""
        raw = self.param(name)
        if not raw:
            return None
        try:
            return int(raw)
        except ValueError:
            raise BmError("value", obj or name, f"Invalid value of {name}: {raw!r}") from None

    def elid(self) -> int:
        """The required ``elid``: ``value`` error when absent or malformed."""
        elid = self.int_param("elid")
        if elid is None:
            raise BmError("value", "elid", "elid is required")
        return elid

    def elids(self) -> list[int]:
        """``elid=1, 2, 3``: the comma-delimited ids of group actions."""
        ids = []
        for part in self.param("elid").split(","):
            if part.strip():
                try:
                    ids.append(int(part))
                except ValueError:
                    raise BmError("value", "elid", f"Invalid id: {part.strip()!r}") from None
        if not ids:
            raise BmError("value", "elid", "elid is required")
        return ids

    # -- access ----------------------------------------------------------
    @property
    def role(self) -> str:
        return self.principal.role if self.principal else "guest"

    def admin_only(self) -> bool:
        """True when this function is refused to client logins."""
        return self.func in ADMIN_FUNCS or self.func.endswith(ADMIN_SUFFIXES)

    def deny(self, obj: str = "func") -> BmError:
        return BmError(self.options.access_error_type, obj, f"Insufficient privileges for {self.func}")

    def sees(self, client_id: int) -> bool:
        """Whether the caller may see a client's records (admin: all; reseller: its project; user: its own)."""
        if self.role == "admin":
            return True
        if self.role == "reseller":
            return self.store.clients.exists(client_id) and (
                self.store.project_of(client_id) == self.options.reseller_project
            )
        return self.principal is not None and client_id == self.principal.account_id

    def own_client(self) -> int:
        """The client the caller acts as (a client login, or any login reached by su), else an access error."""
        if self.principal is None or self.principal.account_id == 0:
            raise BmError(self.options.access_error_type, "account", "Act as a client (su=<login>) to do this")
        return self.principal.account_id

    def client_ids(self) -> Sequence[int]:
        """The clients the caller may list."""
        ids = self.store.clients.ids()
        if self.role == "admin":
            return ids
        if self.role == "reseller":
            return [client_id for client_id in ids if self.sees(client_id)]
        return [self.principal.account_id] if self.principal and self.principal.account_id else []

    def owned_ids(self, table: OwnedTable[Any], plid: int | None) -> Sequence[int]:
        """Ids of an owned table the caller may list, narrowed to client ``plid`` when given."""
        if plid is not None:
            return table.ids_of(plid) if self.sees(plid) else []
        if self.role == "admin":
            return table.ids()
        if self.role == "reseller":
            return [row_id for row_id in table.ids() if self.sees(table.owner_of(row_id))]
        return table.ids_of(self.principal.account_id) if self.principal and self.principal.account_id else []

    # -- lists -----------------------------------------------------------
    def page(self, ids: Sequence[int]) -> tuple[Sequence[int], int, int, int]:
        """``(ids of this page, total, p_num, p_cnt)``; every row when paging is off or p_cnt absent ([guess])."""
        total = len(ids)
        p_cnt = self.int_param("p_cnt") if self.options.honour_paging else None
        p_cnt = p_cnt or (self.options.default_page_size if self.options.honour_paging else None)
        if not p_cnt or p_cnt < 0:
            return ids, total, 1, total
        p_num = max(1, self.int_param("p_num") or 1)
        # A silent cap serves the capped size, yet echoes the size asked; offsets count in one or the other.
        served = min(p_cnt, self.options.page_cap or p_cnt)
        first = (p_num - 1) * (p_cnt if self.options.page_cap_offsets == "asked" else served)
        return ids[first : first + served], total, p_num, p_cnt

    def listing(self, ids: Sequence[int], render: Any) -> Node:
        """Page ``ids`` and render each row of the page with ``render(id)`` (None rows are skipped)."""
        self.listed = ids
        page, total, p_num, p_cnt = self.page(ids)
        if self.options.hide_every:  # counted in p_elems, left out of the rows (a login's level)
            page = [row_id for row_id in page if row_id % self.options.hide_every]
        rows = (row for row in map(render, page) if row is not None)
        doc = list_doc(rows, total, p_num, p_cnt, omit_empty=self.options.omit_empty_fields)
        if self.options.omit_p_elems:
            doc.children = [child for child in doc.children if child.tag != "p_elems"]
        return doc
