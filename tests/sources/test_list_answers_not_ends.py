"""A bare 304 or an empty 200 body where a list is due ends nothing: it fails that one stream, on every
protocol, and no staged row is changed or marked deleted on its word (miclinik: tests/pipeline/test_bad_answers.py)."""

from __future__ import annotations

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
