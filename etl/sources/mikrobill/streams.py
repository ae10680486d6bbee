"""MikroBILL streams: full scans over the sorted client id list, diffed by content hash.

MikroBILL exposes no change time, so every stream is a full scan (``incremental =
False``) and staging's hash comparison finds what changed. Client-paged streams
take ``page_size`` clients per page; the cursor is ``{"after": "<last client id>"}``,
which stays valid across a resume because the id list is sorted (a client added or
removed meanwhile shifts nothing before the cursor).

A record whose paths the core answers "not found" (the client or account vanished
between the listing and the read) is kept as an :class:`Unreadable` and rejected with
the core's reason; the rest of the page is staged.

Documented properties (§2.2) are required: the core refusing one fails the stream. Guessed
ones (account ``Login``/``Tariff``, catalogue properties, any added in options) are optional:
refused as a path this core does not know, they are staged as ``null`` and the refusal is
warned about once per property and stream in a run, not once per record.

The client branch is ``options.client_root``: ``API.Client`` (the manual) or ``API.Clients``
(the API page); vendor pages disagree (§2.3).
"""

from __future__ import annotations

from abc import abstractmethod
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any, ClassVar

import structlog

from etl.settings import SourceSettings
from etl.sources.base import Cursor, Page, RecordRejected, Stream
from etl.sources.mikrobill.client import MikrobillClient, Outcome, id_number
from etl.sources.mikrobill.config import (
    DOCUMENTED_ACCOUNT_PROPERTIES,
    DOCUMENTED_CLIENT_PROPERTIES,
    Catalogue,
    MikrobillOptions,
)

log = structlog.get_logger(__name__)
GET_CLIENTS = "API.GetClients"


class Unreadable(dict):
    """What could be read of a record the core no longer finds, and why; staged as a rejection."""

    def __init__(self, data: dict[str, Any], reason: str) -> None:
        super().__init__(data)
        self.reason = reason


def nest(record: dict[str, Any], path: str, value: Any) -> None:
    """Put ``value`` at the dotted ``path``, so a record mirrors the API tree."""
    *branches, leaf = path.split(".")
    for branch in branches:
        record = record.setdefault(branch, {})
    record[leaf] = value


def missing_reason(outcomes: Sequence[Outcome]) -> str | None:
    """The first "not found" reason among a record's reads, if any."""
    return next((outcome.missing for outcome in outcomes if outcome.missing is not None), None)


def guessed(properties: Sequence[str], documented: frozenset[str]) -> tuple[str, ...]:
    """``"." + property`` of every property not documented, to test read paths' endings against."""
    return tuple(f".{prop}" for prop in properties if prop not in documented)


class MikrobillStream(Stream):
    """Common parts: typed client and options, rejection of :class:`Unreadable` records, refusal warnings."""

    client: MikrobillClient

    def __init__(self, client: Any, settings: SourceSettings) -> None:
        super().__init__(client, settings)
        self.refused: set[str] = set()

    @property
    def options(self) -> MikrobillOptions:
        return self.settings.options

    @property
    def client_root(self) -> str:
        return self.options.client_root

    def value_of(self, prop: str, outcome: Outcome) -> Any:
        """An outcome's value; a refused optional property is null, warned about once per stream."""
        if outcome.refused is not None and prop not in self.refused:
            self.refused.add(prop)
            log.warning(
                "guessed property refused by this MikroBILL; staged as null",
                stream=self.name,
                property=prop,
                reason=outcome.refused,
            )
        return outcome.value

    def source_id(self, record: Any) -> str:
        """The id; an :class:`Unreadable` is rejected with the core's reason."""
        if isinstance(record, Unreadable):
            raise RecordRejected(record.reason)
        return super().source_id(record)


class ClientPagedStream(MikrobillStream):
    """A stream that reads ``page_size`` clients per page from the run's sorted id list."""

    lookahead = True

    def start(self, watermark: Cursor | None) -> Cursor:
        return {"after": None}

    def _slice(self, ids: Sequence[int], cursor: Cursor) -> tuple[list[int], bool]:
        after = cursor.get("after")
        begin = 0 if after is None else bisect_right(ids, int(after))
        end = begin + self.settings.page_size
        return list(ids[begin:end]), end < len(ids)

    def position(self, cursor: Cursor) -> tuple[int]:
        return (-1 if cursor.get("after") is None else int(cursor["after"]),)

    def predict(self, cursor: Cursor) -> Cursor | None:
        ids = self.client.cached_ids(GET_CLIENTS)
        if ids is None:
            return None
        page, more = self._slice(ids, cursor)
        return {"after": str(page[-1])} if page and more else None

    async def fetch(self, cursor: Cursor) -> Page:
        ids = await self.client.listed_ids(GET_CLIENTS)
        page, more = self._slice(ids, cursor)
        if not page:
            return Page([], None, calls=0)
        records, calls = await self.read_clients(page)
        return Page(records, {"after": str(page[-1])} if more else None, calls=calls)

    @abstractmethod
    async def read_clients(self, client_ids: list[int]) -> tuple[list[Any], int]:
        """The records of these clients and the number of Process calls spent."""


class CustomersStream(ClientPagedStream):
    """Clients: name, balance, block reason, interface, speed limit and account GUIDs, one batch per page."""

    name: ClassVar[str] = "customers"
    entity: ClassVar[str] = "customer"

    async def read_clients(self, client_ids: list[int]) -> tuple[list[Any], int]:
        properties = list(self.options.client_properties)
        endings = guessed(properties, DOCUMENTED_CLIENT_PROPERTIES)
        paths = [f"{cid}.{prop}" for cid in client_ids for prop in properties]
        result = await self.client.read(self.client_root, paths, lambda path: path.endswith(endings))
        records = []
        for n, cid in enumerate(client_ids):
            outcomes = result.outcomes[n * len(properties) : (n + 1) * len(properties)]
            record: dict[str, Any] = {"id": str(cid)}
            for prop, outcome in zip(properties, outcomes, strict=True):
                if outcome.missing is None:
                    nest(record, prop, self.value_of(prop, outcome))
            reason = missing_reason(outcomes)
            records.append(Unreadable(record, f"client {cid}: {reason}") if reason else record)
        return records, result.calls


class AccountsStream(ClientPagedStream):
    """Accounts (logins) of a page of clients: one batch for the GUID lists, one for their properties."""

    name: ClassVar[str] = "accounts"
    entity: ClassVar[str] = "account"
    primary_key: ClassVar[str] = "guid"

    async def read_clients(self, client_ids: list[int]) -> tuple[list[Any], int]:
        lists = await self.client.read(self.client_root, [f"{cid}.AutorizeInfo.Accounts" for cid in client_ids])
        records: list[Any] = []
        owned: list[tuple[int, int]] = []
        for cid, outcome in zip(client_ids, lists.outcomes, strict=True):
            if outcome.missing is not None:
                records.append(Unreadable({"client_id": str(cid)}, f"client {cid}: {outcome.missing}"))
            elif not isinstance(outcome.value, list):
                records.append(Unreadable({"client_id": str(cid)}, f"client {cid}: Accounts is not a list"))
            else:
                for raw in outcome.value:
                    guid = id_number(raw)
                    if guid is None:
                        records.append(Unreadable({"client_id": str(cid), "guid": raw}, "account GUID is not numeric"))
                    else:
                        owned.append((cid, guid))
        if not owned:
            return records, lists.calls
        properties = list(self.options.account_properties)
        endings = guessed(properties, DOCUMENTED_ACCOUNT_PROPERTIES)
        paths = [f"{cid}.AutorizeInfo.Accounts.{guid}.{prop}" for cid, guid in owned for prop in properties]
        result = await self.client.read(self.client_root, paths, lambda path: path.endswith(endings))
        for n, (cid, guid) in enumerate(owned):
            outcomes = result.outcomes[n * len(properties) : (n + 1) * len(properties)]
            record: dict[str, Any] = {"guid": str(guid), "client_id": str(cid)}
            pairs = zip(properties, outcomes, strict=True)
            record.update((prop, self.value_of(prop, o)) for prop, o in pairs if o.missing is None)
            reason = missing_reason(outcomes)
            records.append(Unreadable(record, f"account {guid}: {reason}") if reason else record)
        return records, lists.calls + result.calls


class PaymentsStream(ClientPagedStream):
    """Money-log rows (``moneys`` table shape) of a page of clients, one batch per page ([guess] path)."""

    name: ClassVar[str] = "payments"
    entity: ClassVar[str] = "payment"
    primary_key: ClassVar[str] = "uid"

    async def read_clients(self, client_ids: list[int]) -> tuple[list[Any], int]:
        path = self.options.payments_path
        result = await self.client.read(self.client_root, [f"{cid}.{path}" for cid in client_ids])
        records: list[Any] = []
        for cid, outcome in zip(client_ids, result.outcomes, strict=True):
            if outcome.missing is not None:
                records.append(Unreadable({"user_name": str(cid)}, f"client {cid}: {outcome.missing}"))
            elif not isinstance(outcome.value, list):
                records.append(Unreadable({"user_name": str(cid)}, f"client {cid}: {path} is not a list"))
            else:
                records.extend(outcome.value)
        return records, result.calls


class ProductsStream(MikrobillStream):
    """Tariffs, then services ([guess] paths): each listed once, then read ``page_size`` ids per batch."""

    name: ClassVar[str] = "products"
    entity: ClassVar[str] = "product"

    def catalogues(self) -> dict[str, Catalogue]:
        """Kind -> catalogue; ``options.catalogues`` replaces the [guess] defaults."""
        return dict(self.options.catalogues)

    def start(self, watermark: Cursor | None) -> Cursor:
        return {"kind": next(iter(self.catalogues()), None), "after": None}

    def position(self, cursor: Cursor) -> tuple[int, int]:
        kinds = list(self.catalogues())
        kind = kinds.index(cursor["kind"]) if cursor.get("kind") in kinds else len(kinds)
        return (kind, -1 if cursor.get("after") is None else int(cursor["after"]))

    async def fetch(self, cursor: Cursor) -> Page:
        catalogues = self.catalogues()
        kind = cursor.get("kind")
        if kind not in catalogues:
            return Page([], None, calls=0)
        spec = catalogues[kind]
        ids = await self.client.listed_ids(spec.list)
        after = cursor.get("after")
        begin = 0 if after is None else bisect_right(ids, int(after))
        page = list(ids[begin : begin + self.settings.page_size])
        records, calls = await self._read(kind, spec, page) if page else ([], 0)
        if begin + len(page) < len(ids):
            return Page(records, {"kind": kind, "after": str(page[-1])}, calls=calls)
        kinds = list(catalogues)
        following = kinds[kinds.index(kind) + 1 :]
        return Page(records, {"kind": following[0], "after": None} if following else None, calls=calls)

    async def _read(self, kind: str, spec: Catalogue, ids: list[int]) -> tuple[list[Any], int]:
        properties = list(spec.properties)
        paths = [f"{item}.{prop}" for item in ids for prop in properties]
        # Every catalogue property is a [guess]: each may be refused without failing the page.
        result = await self.client.read(spec.base, paths, lambda path: True)
        records: list[Any] = []
        for n, item in enumerate(ids):
            outcomes = result.outcomes[n * len(properties) : (n + 1) * len(properties)]
            record: dict[str, Any] = {"id": str(item), "kind": kind}
            pairs = zip(properties, outcomes, strict=True)
            record.update((prop, self.value_of(f"{kind}.{prop}", o)) for prop, o in pairs if o.missing is None)
            reason = missing_reason(outcomes)
            records.append(Unreadable(record, f"{kind} {item}: {reason}") if reason else record)
        return records, result.calls
