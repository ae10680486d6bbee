"""BILLmanager streams: one declaration per panel list.

| stream    | entity   | API call                      | what it is                                  |
|-----------|----------|-------------------------------|---------------------------------------------|
| accounts  | customer | ``func=account``              | clients (BILLmanager "accounts")            |
| users     | user     | ``func=user``                 | the clients' logins (staff logins skipped)  |
| pricelist | product  | ``func=pricelist``            | tariff plans                                |
| payments  | payment  | ``func=payment``              | payments of every client                    |
| vds       | account  | ``func=vds``                  | virtual servers, one per ISP account (IPs)  |
| soft      | order    | ``func=soft``                 | ordered software/service items              |

Every call sends ``out=json&p_num=<n>&p_cnt=<page_size>``. Pages are numbered, and page
N+1 is known without reading page N, so once an answer has shown how many pages the list
has (``p_elems``), the engine fetches a few of them ahead, never past the last. A server
that ignores the UI paging parameters answers the whole list at once; that answer is taken
as the complete list (see :func:`~etl.sources.billmanager.doc.last_page`). The cursor keeps
the page size it was started with, so a resumed scan numbers pages as the interrupted one did.

Change detection: full scan and hash diff. No list function is known to filter on a
modification time (``payment`` filters only on creation date and status; protocols.md
§4.4), so every run reads every row and staging tells new, changed, unchanged and
deleted rows apart by content hash.

Records are the list rows exactly as the panel sent them (``{"id": {"$": "5"}, ...}``,
attributes such as ``item_status.$color`` included); the source id is ``id.$``.
Staff logins (``func=user`` rows without ``account_id``: the administrators) belong to
no client and are not staged, unless ``options.stage_staff_logins`` is true.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from etl.settings import SourceSettings
from etl.sources.base import Cursor, Page, RecordRejected, Stream
from etl.sources.billmanager.client import BillmanagerClient
from etl.sources.billmanager.doc import last_page, next_page, rows, text


class PanelListStream(Stream):
    """A panel list function read page by page, rows kept whole."""

    func: ClassVar[str]
    lookahead = True
    client: BillmanagerClient

    def __init__(self, client: BillmanagerClient, settings: SourceSettings) -> None:
        super().__init__(client, settings)
        # Known once a page of this scan has shown the server pages (p_elems); None until then.
        self.last_page: int | None = None

    def start(self, watermark: Cursor | None) -> Cursor:
        return {"p_num": 1, "p_cnt": self.settings.page_size}

    def position(self, cursor: Cursor) -> tuple[int]:
        return (int(cursor["p_num"]),)

    def predict(self, cursor: Cursor) -> Cursor | None:
        # Guess only pages that exist: before the first answer, page 2 could be the whole list again.
        following = int(cursor["p_num"]) + 1
        return {**cursor, "p_num": following} if self.last_page is not None and following <= self.last_page else None

    async def fetch(self, cursor: Cursor) -> Page:
        p_num, p_cnt = int(cursor["p_num"]), int(cursor["p_cnt"])
        doc = await self.client.call(self.func, {"p_num": p_num, "p_cnt": p_cnt})
        records = rows(doc)
        self.last_page = last_page(doc, len(records), p_cnt)
        following = next_page(doc, len(records), p_num, p_cnt)
        kept = [record for record in records if self.keep(record)]
        return Page(kept, None if following is None else {**cursor, "p_num": following})

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


class AccountsStream(PanelListStream):
    """Clients (``func=account``)."""

    name = "accounts"
    entity = "customer"
    func = "account"


class UsersStream(PanelListStream):
    """Logins of clients (``func=user``), staff logins skipped."""

    name = "users"
    entity = "user"
    func = "user"

    def keep(self, record: Any) -> bool:
        # Option ``stage_staff_logins`` (default false) keeps the administrators' logins too.
        if not isinstance(record, Mapping) or self.settings.options.stage_staff_logins:
            return True
        return bool((text(record.get("account_id")) or "").strip())


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
