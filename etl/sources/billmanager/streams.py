"""BILLmanager streams: one declaration per panel list.

| stream      | entity     | API call (default)  | what it is                                       |
|-------------|------------|---------------------|--------------------------------------------------|
| accounts    | customer   | ``func=account``    | clients (BILLmanager "accounts")                 |
| users       | user       | ``func=user``       | the clients' logins (rows with ``account_id``)   |
| staff_users | staff_user | ``func=user``       | staff logins (rows without ``account_id``)       |
| pricelist   | product    | ``func=pricelist``  | tariff plans                                     |
| payments    | payment    | ``func=payment``    | payments of every client                         |
| vds         | account    | ``func=vds``        | virtual servers, one per ISP account (IPs)       |
| soft        | order      | ``func=soft``       | ordered software/service items                   |

Function names depend on the installation (protocols.md §4.4-4.5): each stream calls
``options.functions.<stream>``. A function the installation lacks (``missed``) fails that
stream alone, naming the option to set.

Every call sends ``out=json&p_num=<n>&p_cnt=<size>`` and, unless ``options.sort_column`` is
null, ``p_sort=<column>&p_order=<asc|desc>`` ([I]: MgrList metadata sent back as request
parameters), so offset pages keep one order between requests. Where a page ends and what it
proves (``p_elems``, ``$func``, page caps, rows shifted mid-scan) is decided in
:mod:`etl.sources.billmanager.paging`; the cursor carries the pass's ``p_elems``, so once the
first page has answered, the engine fetches a few pages ahead, never past the last.

Change detection: full scan and hash diff. No list function is known to filter on a
modification time (``payment`` filters only on creation date and status; protocols.md
§4.4), so every run reads every row and staging tells new, changed, unchanged and
deleted rows apart by content hash.

Records are the list rows exactly as the panel sent them (``{"id": {"$": "5"}, ...}``,
attributes such as ``item_status.$color`` included); the source id is ``id.$``.
``func=user`` holds the clients' logins and the staff's (administrators, operators: no
``account_id``); the two streams read the same list and keep one kind each, and both report
every row answered (:attr:`Page.received`) so the list's total still checks out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from etl.settings import SourceSettings
from etl.sources.base import Cursor, Page, RecordRejected, Stream
from etl.sources.billmanager.client import BillmanagerClient
from etl.sources.billmanager.doc import FunctionMissing, answered_func, rows, text
from etl.sources.billmanager.paging import after_page, offset_of, predicted


class PanelListStream(Stream):
    """A panel list function read page by page, rows kept whole."""

    # The function's usual name; an installation's own name comes from options.functions.
    func: ClassVar[str]
    lookahead = True
    offset_paged = True
    client: BillmanagerClient

    def __init__(self, client: BillmanagerClient, settings: SourceSettings) -> None:
        super().__init__(client, settings)
        self.function: str = getattr(settings.options.functions, self.name)

    def start(self, watermark: Cursor | None) -> Cursor:
        return {"p_num": 1, "p_cnt": self.settings.page_size}

    def position(self, cursor: Cursor) -> tuple[int]:
        # Rows before the page: grows even when a page cap changes p_cnt mid-pass.
        return (offset_of(cursor),)

    def predict(self, cursor: Cursor) -> Cursor | None:
        # Only pages the pass's p_elems says exist: before the first answer, page 2 could be the whole list again.
        return predicted(cursor)

    async def fetch(self, cursor: Cursor) -> Page:
        options = self.settings.options
        params: dict[str, Any] = {"p_num": int(cursor["p_num"]), "p_cnt": int(cursor["p_cnt"])}
        if options.sort_column:
            params |= {"p_sort": options.sort_column, "p_order": options.sort_order}
        try:
            doc = await self.client.call(self.function, params)
        except FunctionMissing as exc:
            raise FunctionMissing(
                f"{exc}; stream {self.name}: set options.functions.{self.name} to this installation's "
                "name for the list (e.g. vds.vps), or leave the stream out"
            ) from None
        logon = answered_func(doc) not in (None, self.function)
        records = rows(doc, self.function, strict=not logon)
        following, evidence = after_page(doc, self.function, cursor, len(records))
        if logon:
            records = []  # a logon form's fields are not rows of the list
        kept = [record for record in records if self.keep(record)]
        return Page(kept, following, evidence=evidence, received=len(records))

    def keep(self, record: Any) -> bool:
        """Whether a row belongs to this stream (malformed rows are kept, to be rejected with a reason)."""
        return True

    def source_id(self, record: Any) -> str:
        """``id.$`` of the row; rows without a usable id are rejected."""
        if not isinstance(record, Mapping):
            raise RecordRejected(f"row is a {type(record).__name__}, not an object")
        if "id" not in record:
            raise RecordRejected("row has no id")
        value = text(record["id"])
        if value is None:
            raise RecordRejected(f"id is not a text node: {str(record['id'])[:60]!r}")
        if not value.strip():
            raise RecordRejected("id is empty")
        return value.strip()


def is_staff(record: Any) -> bool:
    """A ``func=user`` row without ``account_id``: a login of the panel's staff, not of a client."""
    return isinstance(record, Mapping) and not (text(record.get("account_id")) or "").strip()


class AccountsStream(PanelListStream):
    """Clients (``func=account``)."""

    name = "accounts"
    entity = "customer"
    func = "account"


class UsersStream(PanelListStream):
    """Logins of clients (``func=user`` rows with an ``account_id``; malformed rows too, to be rejected)."""

    name = "users"
    entity = "user"
    func = "user"

    def keep(self, record: Any) -> bool:
        return not is_staff(record)


class StaffUsersStream(PanelListStream):
    """Logins of the panel's staff (``func=user`` rows without ``account_id``): no client owns them."""

    name = "staff_users"
    entity = "staff_user"
    func = "user"

    def keep(self, record: Any) -> bool:
        return is_staff(record)


class PricelistStream(PanelListStream):
    """Tariff plans (``func=pricelist``)."""

    name = "pricelist"
    entity = "product"
    func = "pricelist"


class PaymentsStream(PanelListStream):
    """Payments of every client (``func=payment``)."""

    name = "payments"
    entity = "payment"
    func = "payment"


class VdsStream(PanelListStream):
    """Virtual servers with their IPs (``func=vds``): the ISP accounts."""

    name = "vds"
    entity = "account"
    func = "vds"


class SoftStream(PanelListStream):
    """Ordered software and service items (``func=soft``)."""

    name = "soft"
    entity = "order"
    func = "soft"
