"""A bare 304 or an empty 200 body where a list is due ends nothing: it fails that one stream, on every
protocol, and no staged row is changed or marked deleted on its word (miclinik: tests/pipeline/test_bad_answers.py)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import aiohttp
import pytest
from sqlalchemy import select

from etl.db.staging import StagedRecord
from jobs.extract import run_extract
from tests.support import shipped_settings, simulators, source_for, staged_content
from tests.support.hostile import Answer, HostileServer, Proxy, Received

# A request of one list stream, told by what its body carries.
LIST_CALLS = {
    "mikrobill": ("products", lambda body: b'"path": "API.GetTariffs"' in body),
    # The connection check at open names every command in one envelope; the stream's own has one.
    "microbizz": ("products", lambda body: b"GetProductsByLastChange" in body and body.count(b"ByLastChange") == 1),
    "billmanager": ("pricelist", lambda body: b"func=pricelist&" in body),
}
ANSWERS = {"304": Answer(304), "empty 200": Answer(200, {"Content-Type": "application/json"}, b"")}


@pytest.mark.parametrize("answer", list(ANSWERS))
@pytest.mark.parametrize("kind", list(LIST_CALLS))
async def test_a_304_or_an_empty_body_on_a_list_fails_that_stream_alone(
    kind: str, answer: str, migrated_url: str, engine
) -> None:
    """The stream whose list call is answered so fails naming the status; every other stream of the
    source succeeds, staged rows are unchanged and none is marked deleted."""
    stream, marker = LIST_CALLS[kind]
    async with simulators([kind], scale=30) as sims, HostileServer() as front:
        front.route("*", "*", Proxy(sims[kind].origin))
        base_url = sims[kind].base_url.replace(sims[kind].origin, front.base_url)
        settings = shipped_settings(migrated_url).model_copy(update={"sources": [source_for(kind, base_url)]})
        assert (await run_extract(settings, full=True)).status == "succeeded"
        before, tombstones = await staged_content(engine), await deleted_rows(engine)

        def spoil(seen: Received) -> Answer | Proxy:
            return ANSWERS[answer] if marker(seen.body) else Proxy(sims[kind].origin)

        front.route("*", "*", spoil)
        report = await run_extract(settings, full=True)
    outcome = {r.stream: (r.status, r.error or "") for r in report.results}
    assert outcome.pop(stream)[0] == "failed"
    assert all(status == "succeeded" for status, _ in outcome.values()), outcome
    assert await staged_content(engine) == before
    assert await deleted_rows(engine) == tombstones  # Microbizz's own deleted flags, from the first run


async def deleted_rows(engine) -> set[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(StagedRecord.entity, StagedRecord.source_id).where(StagedRecord.deleted_at.is_not(None))
        )
        return {(row[0], row[1]) for row in rows}


async def test_a_total_that_lies_does_not_keep_a_repeating_server_going(migrated_url: str, engine) -> None:
    """A BILLmanager claiming 10**15 price plans and serving the same page for ever is stopped by the
    bound on rows received again; nothing is deleted and the pass is dropped, so the next run, against
    an honest server, starts afresh and succeeds."""
    async with simulators(["billmanager"], scale=30) as sims, HostileServer() as front:
        origin = sims["billmanager"].origin
        front.route("*", "*", Proxy(origin))
        base_url = sims["billmanager"].base_url.replace(origin, front.base_url)
        source = source_for("billmanager", base_url, page_size=5, scan_bound_slack=30)
        settings = shipped_settings(migrated_url).model_copy(update={"sources": [source]})
        assert (await run_extract(settings, full=True)).status == "succeeded"
        before = await staged_content(engine)

        async def same_page(seen: Received) -> Answer | Proxy:
            if b"func=pricelist&" not in seen.body:
                return Proxy(origin)
            body = seen.body.replace(b"p_num=", b"p_num=1&was=")
            async with aiohttp.ClientSession() as http, http.post(origin + seen.path_qs, data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"}) as upstream:  # fmt: skip
                answer = await upstream.json(content_type=None)
            asked = parse_qs(seen.body.decode())["p_num"][0]
            answer["doc"] |= {"p_elems": {"$": str(10**15)}, "p_num": {"$": asked}}
            return Answer(200, {"Content-Type": "application/json"}, body=answer)

        front.route("*", "*", same_page)
        report = await run_extract(settings, full=True)
        outcome = {r.stream: (r.status, r.error or "") for r in report.results}
        assert outcome["pricelist"][0] == "failed" and "repeats itself" in outcome["pricelist"][1], outcome
        assert await staged_content(engine) == before
        front.route("*", "*", Proxy(origin))
        assert (await run_extract(settings, full=True)).status == "succeeded"


async def test_a_billmanager_elem_that_is_neither_list_nor_object_fails_its_stream(migrated_url: str, engine) -> None:
    """``elem: "garbage"`` is no list: the stream fails at its first page (not one junk row per page
    walked to ``p_elems``), and the other streams succeed."""
    async with simulators(["billmanager"], scale=30) as sims, HostileServer() as front:
        origin = sims["billmanager"].origin
        base_url = sims["billmanager"].base_url.replace(origin, front.base_url)
        settings = shipped_settings(migrated_url).model_copy(
            update={"sources": [source_for("billmanager", base_url, page_size=5)]}
        )

        async def garbage(seen: Received) -> Answer | Proxy:
            if b"func=pricelist&" not in seen.body:
                return Proxy(origin)
            doc = {"doc": {"elem": "garbage", "p_elems": {"$": "67"}, "p_num": {"$": "1"}}}
            return Answer(200, {"Content-Type": "application/json"}, body=doc)

        front.route("*", "*", garbage)
        report = await run_extract(settings, full=True)
    outcome = {r.stream: (r.status, r.error or "", r.counts.calls) for r in report.results}
    status, error, calls = outcome.pop("pricelist")
    assert status == "failed" and "elem is a str" in error and calls <= 1
    assert all(status == "succeeded" for status, _, _ in outcome.values()), outcome


async def test_one_bad_record_in_a_microbizz_envelope_is_rejected_alone(migrated_url: str, engine) -> None:
    """Invalid UTF-8 inside one customer of an envelope rejects that customer with its reason; the rest
    of the chunk stages and nothing is retried (the same bytes would come again)."""
    async with simulators(["microbizz"], scale=30) as sims, HostileServer() as front:
        origin = sims["microbizz"].origin
        base_url = sims["microbizz"].base_url.replace(origin, front.base_url)
        settings = shipped_settings(migrated_url).model_copy(update={"sources": [source_for("microbizz", base_url)]})

        async def bad_byte(seen: Received) -> Answer | Proxy:
            if not (b"GetCustomersByLastChange" in seen.body and seen.body.count(b"ByLastChange") == 1):
                return Proxy(origin)
            async with aiohttp.ClientSession() as http, http.post(origin + seen.path_qs, data=seen.body,
                headers={"Content-Type": "application/x-www-form-urlencoded"}) as upstream:  # fmt: skip
                answer = await upstream.json(content_type=None)
            rows = next(value for value in answer["results"][0].values() if isinstance(value, list))
            rows[0]["name"] = "MARKER"
            body = json.dumps(answer).encode().replace(b"MARKER", b"bad \xff byte")
            return Answer(200, {"Content-Type": "application/json"}, body=body)

        front.route("*", "*", bad_byte)
        report = await run_extract(settings, full=True)
    customers = next(r for r in report.results if r.stream == "customers")
    assert report.status == "succeeded", report.failures()
    assert customers.counts.rejected == 1 and customers.counts.new == customers.counts.records - 1 > 0
    assert customers.counts.calls == 1
