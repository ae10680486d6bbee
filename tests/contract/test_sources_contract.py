"""One contract for every registered source, run against its simulator (conventions §9)."""

from __future__ import annotations

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


@pytest.mark.parametrize("kind", KINDS)
async def test_cursor_moves_forward_and_paging_ends(kind: str, engine) -> None:
    """No stream asks for the same cursor twice, and each stops within ceil(n/page)+1 pages."""
    async with simulators([kind], scale=300) as sims:
        source = source_for(kind, sims[kind].base_url, page_size=40)
        definition = REGISTRY[kind]
        from etl.http.transport import HttpTransport

        async with HttpTransport(source) as transport:
            client = definition.client_class(source, transport)
            await client.open()
            for stream_class in definition.streams:
                stream = RecordingStream(stream_class(client, source))
                result = await extract_stream(engine, stream, source=source.name, run_id=f"run-{stream.name}")
                cursors = [repr(sorted(c.items())) for c in stream.cursors]
                assert len(cursors) == len(set(cursors)), f"{stream.name} repeated a cursor"
                assert result.complete
                assert result.counts.pages <= result.counts.records // 40 + 1 + 1
            await client.close()


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
