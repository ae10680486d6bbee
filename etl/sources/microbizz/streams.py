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
``date``/``time`` of every call is returned as :attr:`Page.watermark`; the engine keeps the
one of the scan's *first* call, which is the next run's starting point. Records changed
while a scan runs are therefore read again next time, never lost; the overlap is at most
the records changed during the scan, plus those changed in the same second before it began.
The server chooses the chunk size (``page_size`` has no effect here).
The date/time is the tenant's local time [I: Copenhagen]; it is stored and sent back exactly
as the server wrote it, so this client never converts zones.

One command per envelope: each chunk needs the ``resumekey`` of the one before, and each
chunk is its own checkpoint, so chunks of one sequence cannot share an envelope; packing the
first calls of several streams together would pin them all to one moment before most of
them run and tie one stream's checkpoint to another's for a saving of a few round trips a
night. Multi-command envelopes are used where they do help: the connection check at open.

A ``resumekey`` the server refuses (the run was killed and the key has since expired; how
long keys live is [U]) restarts the sequence at the same date/time: chunks already staged
are read again (hash-diffed, so harmless), nothing is skipped.
"""

from __future__ import annotations

from typing import Any, ClassVar

import structlog

from etl.http.errors import BadRequest, ProtocolError
from etl.sources.base import Cursor, Page, Stream
from etl.sources.microbizz.client import MicrobizzClient

log = structlog.get_logger(__name__)
EPOCH = {"changedate": "1970-01-01", "changetime": "00:00:00"}


class ChangeFeedStream(Stream):
    """Records of one entity changed since a watermark, read in ``resumekey`` chunks."""

    command: ClassVar[str]
    arguments: ClassVar[tuple[tuple[str, Any], ...]] = ()
    incremental = True
    client: MicrobizzClient

    def start(self, watermark: Cursor | None) -> Cursor:
        since = watermark if watermark and watermark.get("changedate") else EPOCH
        changetime = since.get("changetime") or "00:00:00"
        return {"changedate": since["changedate"], "changetime": changetime, "resumekey": None}

    async def fetch(self, cursor: Cursor) -> Page:
        name, output = self.client.sync_command(self.command)
        request = {"command": name, "changedate": cursor["changedate"], "changetime": cursor["changetime"]}
        request.update(self.arguments)
        if cursor.get("resumekey"):
            request["resumekey"] = cursor["resumekey"]
        calls = 1
        try:
            result, answer = await self.client.run(request)
        except BadRequest as exc:
            if "resumekey" not in request or "resumekey" not in str(exc).lower():
                raise
            log.warning("resumekey refused; restarting the sequence at the same date/time", error=str(exc))
            request.pop("resumekey")
            result, answer = await self.client.run(request)
            calls = 2
        records = result.get(output)
        if not isinstance(records, list):
            raise ProtocolError(f"{name}: answer has no {output!r} collection")
        resumekey = result.get("resumekey") or None
        if resumekey is not None and resumekey == request.get("resumekey"):
            raise ProtocolError(f"{name}: the server answered the resumekey it was sent; refusing to loop")
        next_cursor = {**cursor, "resumekey": resumekey} if resumekey else None
        return Page(records, next_cursor, watermark=answer.watermark, calls=calls)


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
