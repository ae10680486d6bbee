"""One contract for every registered source, run against its simulator (conventions §9)."""

from __future__ import annotations

import math

import pytest

from etl.db import migrate
from etl.db.engine import create_engine
from etl.pipeline.extract import extract_stream
from etl.simulators.faults import PROFILES
from etl.sources import REGISTRY
from etl.sources.base import Cursor, Page, Stream
from jobs.extract import run_extract
from tests.support import shipped_settings, simulators, source_for, staged_content, staged_keys, truth_keys

KINDS = list(REGISTRY)


async def _run_into(url: str, kind: str, base_url: str, **overrides):
    settings = shipped_settings(url).model_copy(update={"sources": [source_for(kind, base_url, **overrides)]})
    return await run_extract(settings)


class RecordingStream:
    """Wraps a stream to record the cursors the engine asks for (observation only)."""

    def __init__(self, stream: Stream) -> None:
        self.inner, self.cursors = stream, []
        self.name, self.entity, self.settings = stream.name, stream.entity, stream.settings
        self.lookahead, self.incremental = stream.lookahead, stream.incremental

    def __getattr__(self, item: str):
        return getattr(self.inner, item)

    async def fetch(self, cursor: Cursor) -> Page:
        self.cursors.append(cursor)
        return await self.inner.fetch(cursor)


@pytest.mark.parametrize("kind", KINDS)
async def test_every_stream_stages_exactly_the_simulator_records(kind: str, engine, migrated_url) -> None:
    """A first extract stages every record the simulator serves, once, and nothing else."""
    async with simulators([kind], scale=300) as sims:
        report = await _run_into(migrated_url, kind, sims[kind].base_url)
        assert report.status == "succeeded", report.failures()
        name = source_for(kind, sims[kind].base_url).name
        entities = {s.entity for s in REGISTRY[kind].streams}
        assert await staged_keys(engine, name) == truth_keys(sims[kind].state, entities)
        for result in report.results:
            assert result.counts.records == result.counts.new, f"{result.stream} returned a record twice"


def _pages(n: int, size: int) -> int:
    """A list whose server states its size: ceil(n / size) pages, one when empty."""
    return max(1, math.ceil(n / size))


def _proven_by_an_empty_page(n: int, size: int) -> int:
    """A list without a count: pages until a short one, then one more ask that must come back empty."""
    return n // size + 1 + (1 if n % size else 0)


def expected_pages(kind: str, stream: str, records: dict[str, int], size: int, source) -> int:
    """How many pages each source's paging takes for its streams' records at ``size`` (a function of them)."""
    if kind == "miclinik":  # NEW profile: pagination_data counts all but /users (protocols.md §1.4)
        return _proven_by_an_empty_page(records[stream], size) if stream == "users" else _pages(records[stream], size)
    if kind == "billmanager":  # p_elems counts the rows answered: users and staff_users share func=user
        answered = records["users"] + records["staff_users"] if stream.endswith("users") else records[stream]
        return _pages(answered, size)
    if kind == "microbizz":  # the server's chunks (resumekey), whatever our page size
        return _pages(records[stream], 500)
    if kind == "mikrobill":  # batches of clients; catalogues one list each
        return len(source.options.catalogues) if stream == "products" else _pages(records["customers"], size)
    return records[stream] // size + 1  # the toy: keyset, a short page ends


@pytest.mark.parametrize("kind", KINDS)
async def test_cursor_moves_forward_and_paging_ends(kind: str, engine) -> None:
    """No stream asks for the same cursor twice, and each takes exactly the pages its paging needs for
    its records at page size 40 (a function of records and page size per source)."""
    async with simulators([kind], scale=300) as sims:
        # One cursor per stream: a split keyset scan's pages are counted in tests/pipeline/test_partitions.py.
        source = source_for(kind, sims[kind].base_url, page_size=40, partitions=1)
        definition = REGISTRY[kind]
        from etl.http.transport import HttpTransport

        async with HttpTransport(source) as transport:
            client = definition.client_class(source, transport)
            await client.open()
            results = {}
            for stream_class in definition.streams:
                stream = RecordingStream(stream_class(client, source))
                result = await extract_stream(engine, stream, source=source.name, run_id=f"run-{stream.name}")
                cursors = [repr(sorted(c.items())) for c in stream.cursors]
                assert len(cursors) == len(set(cursors)), f"{stream.name} repeated a cursor"
                assert result.complete
                results[stream.name] = result.counts
            await client.close()
    records = {name: counts.records for name, counts in results.items()}
    assert all(records.values()), records
    pages = {name: counts.pages for name, counts in results.items()}
    assert pages == {name: expected_pages(kind, name, records, 40, source) for name in records}


@pytest.mark.parametrize("kind", KINDS)
async def test_second_run_fetches_nothing_new(kind: str, migrated_url) -> None:
    """Right after a complete run, a second run stages nothing new or changed."""
    async with simulators([kind], scale=200) as sims:
        first = await _run_into(migrated_url, kind, sims[kind].base_url)
        assert first.status == "succeeded", first.failures()
        second = await _run_into(migrated_url, kind, sims[kind].base_url)
        assert second.status == "succeeded", second.failures()
        first_counts = {r.stream: r.counts.records for r in first.results}
        incremental = {s.name for s in REGISTRY[kind].streams if s.incremental}
        for result in second.results:
            assert (result.counts.new, result.counts.changed, result.counts.deleted) == (0, 0, 0), result.stream
            if result.stream in incremental and first_counts[result.stream] > 1:
                # Only the overlap window (records touched in the last minutes) may be read again.
                assert result.counts.records < first_counts[result.stream], f"{result.stream} re-read everything"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("profile", ["flaky", "hostile"])
async def test_faults_give_identical_staging_or_named_failures(
    kind: str, profile: str, tmp_path, engine, migrated_url
) -> None:
    """Against one simulator, a faulted run (flaky or hostile) stages exactly what a clean run stages,
    with no stream failed or held."""
    clean_url = f"sqlite+aiosqlite:///{tmp_path / 'clean.db'}"
    migrate.upgrade(clean_url)
    async with simulators([kind], scale=500, seed=13) as sims:
        assert (await _run_into(clean_url, kind, sims[kind].base_url)).status == "succeeded"
        plan = sims[kind].plan
        plan.rates = dict(PROFILES[profile])
        plan.latency_seconds = plan.slow_page_seconds = 0.01
        plan.retry_after_seconds = 0
        report = await _run_into(migrated_url, kind, sims[kind].base_url, page_size=30, max_attempts=25)
        assert sum(plan.fired.values()) > 0, "no fault fired: the test proves nothing"
    clean_engine = create_engine(clean_url)
    try:
        clean = await staged_content(clean_engine)
    finally:
        await clean_engine.dispose()
    # Every fault of both profiles has a retryable shape (each is a transient of the real system or
    # the proxy in front of it) and max_attempts covers a seeded burst: no stream may fail, none is held.
    assert [(r.stream, r.status, r.error) for r in report.results if r.failed] == []
    assert await staged_content(engine) == clean
