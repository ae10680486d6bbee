"""The engine, not each stream, refuses pages that do not move forward; classifiers import no aiohttp."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from etl.http.errors import ProtocolError
from etl.http.transport import HttpTransport
from etl.pipeline.extract import extract_stream
from etl.sources.miclinik.client import MiclinikClient
from etl.sources.miclinik.streams import ThirdpartiesStream
from tests.support import ROOT, source_for


def dolibarr_ignoring(kind: str) -> web.Application:
    """A Dolibarr-shaped server that ignores sqlfilters ("same") or sortfield ("backwards")."""
    rows = [{"id": str(i), "name": f"n{i}"} for i in range(1, 31)]

    async def status(request: web.Request) -> web.Response:
        return web.json_response({"success": {"code": 200, "timestamp_now_utc": 1_760_000_000}})

    async def thirdparties(request: web.Request) -> web.Response:
        limit = int(request.query["limit"])
        page = rows[:limit] if kind == "same" else list(reversed(rows))[:limit]
        return web.Response(text=json.dumps(page), content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/index.php/status", status)
    app.router.add_get("/api/index.php/thirdparties", thirdparties)
    return app


@pytest.mark.parametrize(("kind", "reason"), [("same", "did not move forward"), ("backwards", "ascending order")])
@pytest.mark.parametrize("partitions", [1, 0])
async def test_a_page_that_does_not_move_forward_is_a_protocol_error_naming_the_stream(
    engine, kind, reason, partitions
) -> None:
    """A server answering the same page again, or ids running backwards, stops the stream with a protocol
    error that names it, after the first page at most (never a loop, never skipped records). Split into
    partitions, a backwards page is also a row past its partition's upper bound, which is said first."""
    async with TestServer(dolibarr_ignoring(kind)) as server:
        source = source_for("miclinik", str(server.make_url("/api/index.php")), page_size=10, partitions=partitions)
        async with HttpTransport(source) as transport:
            client = MiclinikClient(source, transport)
            await client.open()
            if partitions != 1 and kind == "backwards":
                reason = "ignores \\(t.rowid:<=:...\\) filters; set partitions: 1"
            with pytest.raises(ProtocolError, match=f"stream thirdparties: .*{reason}"):
                await extract_stream(engine, ThirdpartiesStream(client, source), source=source.name, run_id="r1")
            # status and at most two pages; split: status, the probe, and one page of each of 4 partitions at most
            assert transport.stats.requests <= (3 if partitions == 1 else 6)


def test_classifiers_and_responses_import_no_aiohttp() -> None:
    """Pure modules (responses, verdicts, retry policy, each protocol's classifier) load without aiohttp."""
    modules = [
        "etl.http.response", "etl.http.errors", "etl.http.retry", "etl.payload", "etl.redaction",
        "etl.pipeline.state", "etl.pipeline.results", "etl.sources.miclinik.answers",
        "etl.sources.billmanager.doc", "etl.sources.microbizz.envelope", "etl.sources.mikrobill.codes",
    ]  # fmt: skip
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
