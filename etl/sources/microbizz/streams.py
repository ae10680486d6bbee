"""Microbizz streams: one declaration per ``…ByLastChange`` sync command.

| stream        | entity     | API call                                        | output key     |
|---------------|------------|-------------------------------------------------|----------------|
| customers     | customer   | GetCustomersByLastChange (ignoreclosed 0)       | customers      |
| users         | user       | GetUsersByLastChange [name I]                   | users          |
| products      | product    | GetProductsByLastChange (include_prices 1)      | products       |
| invoice_lines | order_line | GetInvoiceLinesByLastChange                     | invoicelines   |
| todos         | todo       | GetTodosByLastChange                            | todos [I]      |

Every stream is incremental the way Microbizz's synchronization page says (§3.5): call
with the stored ``changedate``/``changetime`` (``1970-01-01 00:00:00`` the first time and
on ``--full``); while the answer carries a ``resumekey``, call again with the *same*
date/time plus that key; the last chunk carries none. The cursor is
``{"changedate", "changetime", "resumekey"}`` and the engine commits it with each staged
chunk, so a killed run continues at the first chunk it had not staged. The envelope's
``date``/``time`` of every call, moved back by ``watermark_overlap_seconds`` (default and
minimum one hour), is returned as :attr:`Page.watermark`; the engine keeps the one of the
scan's *first* call, which is the next run's starting point. The overlap is there because
``changetime`` is strictly "after" a watermark truncated to the second (a change in that
same second would be skipped) and because the tenant's local time repeats an hour on the
autumn DST night (a change in the second pass of that hour reads as *earlier* than a
watermark taken in the first). Records changed in the overlap or while a scan runs are read
again next time (hash-diffed, so harmless), never lost.
The server chooses the chunk size (``page_size`` has no effect here).
The date/time is the tenant's local time [I: Copenhagen]; it is stored and sent back exactly
as the server wrote it, so this client never converts zones.

One command per envelope: each chunk needs the ``resumekey`` of the one before, and each
chunk is its own checkpoint, so chunks of one sequence cannot share an envelope; packing the
first calls of several streams together would pin them all to one moment before most of
them run and tie one stream's checkpoint to another's for a saving of a few round trips a
night. Multi-command envelopes are used where they do help: the connection check at open.

Deletions: a record carrying a ``deleted`` flag is the server's tombstone
(:meth:`ChangeFeedStream.is_deleted`), on every run, incremental or full. Whether a record
removed entirely still shows up is [U] (§3.5), so every stream asks the engine for a full
scan at least weekly (``full_scan_every``); the full scan's end is what proves a hard delete.

An expired ``resumekey`` is recognised by behaviour, not by its wording (which is [U]): when
a call with a key fails at command level, the same call *without* the key is sent; if that
succeeds, the key was the problem and the chunk sequence restarts at the same date/time
(chunks already staged are read again, hash-diffed, so nothing is skipped), at most
``resumekey_restarts`` times per scan. If it fails too, its own error is raised: the
command itself is refused, whatever the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import structlog

from etl.http.errors import ProtocolError, RetryableError
from etl.payload import RawJson, peek
from etl.settings import SourceSettings
from etl.sources.base import Cursor, Page, Stream
from etl.sources.microbizz.client import MicrobizzClient
from etl.sources.microbizz.envelope import Answer, flag_set, overlapped

log = structlog.get_logger(__name__)
EPOCH = {"changedate": "1970-01-01", "changetime": "00:00:00"}


class ChangeFeedStream(Stream):
    """Records of one entity changed since a watermark, read in ``resumekey`` chunks."""

    command: ClassVar[str]
    arguments: ClassVar[tuple[tuple[str, Any], ...]] = ()
    incremental = True
    # ByLastChange cannot show a record removed entirely (§3.5 [U]): a full scan proves it.
    full_scan_every = timedelta(days=7)
    client: MicrobizzClient

    def __init__(self, client: Any, settings: SourceSettings) -> None:
        super().__init__(client, settings)
        self.restarts = 0

    def start(self, watermark: Cursor | None) -> Cursor:
        since = watermark if watermark and watermark.get("changedate") else EPOCH
        changetime = since.get("changetime") or "00:00:00"
        return {"changedate": since["changedate"], "changetime": changetime, "resumekey": None}

    def is_deleted(self, record: Any) -> bool:
        """A record whose ``deleted`` flag is set (``1``): the server's tombstone."""
        if isinstance(record, RawJson):
            try:
                return flag_set(peek(record, "deleted"))
            except (TypeError, ValueError):  # not an object: rejected when its id is read
                return False
        return isinstance(record, Mapping) and flag_set(record.get("deleted"))

    async def fetch(self, cursor: Cursor) -> Page:
        name, output = self.client.sync_command(self.command)
        request = {"command": name, "changedate": cursor["changedate"], "changetime": cursor["changetime"]}
        request.update(self.arguments)
        if cursor.get("resumekey"):
            request["resumekey"] = cursor["resumekey"]
        result, answer, calls = await self._call(request)
        records = result.get(output)
        if not isinstance(records, list):
            raise ProtocolError(f"{name}: answer has no {output!r} collection")
        resumekey = result.get("resumekey") or None
        if resumekey is not None and resumekey == request.get("resumekey"):
            raise ProtocolError(f"{name}: the server answered the resumekey it was sent; refusing to loop")
        next_cursor = {**cursor, "resumekey": resumekey} if resumekey else None
        watermark = overlapped(answer.watermark, self.client.options.watermark_overlap_seconds)
        return Page(records, next_cursor, watermark=watermark, calls=calls)

    async def _call(self, request: dict[str, Any]) -> tuple[Mapping[str, Any], Answer, int]:
        """The command's result; a refused resumekey is told from a refused command by asking without it."""
        result, answer = await self.client.send(request)
        error = self.client.failure(result, request)
        if error is None:
            return result, answer, 1
        if "resumekey" not in request or isinstance(error, RetryableError):
            raise error
        if self.restarts >= self.client.options.resumekey_restarts:
            raise ProtocolError(f"{error} (with a resumekey, after {self.restarts} restarts of the sequence)")
        fresh = {key: value for key, value in request.items() if key != "resumekey"}
        result, answer = await self.client.send(fresh)
        second = self.client.failure(result, fresh)
        if second is not None:
            raise second  # refused without the key too: the command is the problem, not the key
        self.restarts += 1
        log.warning("resumekey refused; restarting the sequence at the same date/time", error=str(error))
        return result, answer, 2


class CustomersStream(ChangeFeedStream):
    name = "customers"
    entity = "customer"
    command = "GetCustomersByLastChange"
    # Closed customers are still billed for what they used; ask for them explicitly.
    arguments = (("ignoreclosed", 0),)


class UsersStream(ChangeFeedStream):
    name = "users"
    entity = "user"
    command = "GetUsersByLastChange"


class ProductsStream(ChangeFeedStream):
    name = "products"
    entity = "product"
    command = "GetProductsByLastChange"
    # Individual customer prices travel with their product; assigning one counts as a product change.
    arguments = (("include_prices", 1),)


class InvoiceLinesStream(ChangeFeedStream):
    name = "invoice_lines"
    entity = "order_line"
    command = "GetInvoiceLinesByLastChange"


class TodosStream(ChangeFeedStream):
    name = "todos"
    entity = "todo"
    command = "GetTodosByLastChange"
