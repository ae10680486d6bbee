"""The models and the Alembic revisions describe the same schema, on every backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from etl.db import migrate
from etl.db.engine import create_engine
from etl.db.models import metadata


async def _diff(url: str) -> list:
    engine: AsyncEngine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata)
            )
    finally:
        await engine.dispose()


async def test_models_and_migrations_agree(migrated_url: str) -> None:
    """Autogenerate finds nothing to add, drop or alter after `upgrade head`."""
    assert await _diff(migrated_url) == []


async def test_downgrade_to_base_then_upgrade_again(migrated_url: str) -> None:
    """Every revision downgrades cleanly and the schema comes back identical."""
    migrate.downgrade(migrated_url, "base")
    assert migrate.current(migrated_url) == ""
    migrate.upgrade(migrated_url)
    assert migrate.current(migrated_url) == f"{migrate.head_revision()} (head)"
    assert await _diff(migrated_url) == []


@pytest.mark.postgresql
async def test_staged_payloads_are_lz4_compressed_on_postgresql(engine) -> None:
    """On PostgreSQL the payload column keeps its lz4 compression through every migration (0002 retyped it)."""
    from sqlalchemy import text

    async with engine.connect() as conn:
        method = await conn.scalar(
            text(
                "SELECT attcompression FROM pg_attribute "
                "WHERE attrelid = 'staged_records'::regclass AND attname = 'payload'"
            )
        )
    assert method in ("l", b"l"), f"payload column compression is {method!r}, not lz4"


async def test_0003_converts_scan_state_both_ways(database_url: str) -> None:
    """A scan in progress saved with one ``cursor`` (0002) becomes ``cursors: [cursor]`` and goes back on downgrade."""
    from sqlalchemy import text

    from etl.pipeline.state import StreamState

    migrate.upgrade(database_url, "0002")
    old = {"watermark": {"tms": "2026-01-01 00:00:00"}, "scan": {"id": "r1", "runs": ["r1"], "mode": "full",
           "cursor": {"after": 40, "since": None}, "next_watermark": None, "started_at": "x"}}  # fmt: skip
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO stream_states (source, stream, state, updated_at) VALUES ('m', 'p', :s, :t)"),
                {"s": json.dumps(old), "t": datetime(2026, 1, 1, tzinfo=UTC)},
            )
        migrate.upgrade(database_url)
        state = StreamState.from_json(await _state(engine))
        assert state.scan is not None and state.scan.cursors == [{"after": 40, "since": None}]
        assert "cursor" not in (await _state(engine))["scan"]
        migrate.downgrade(database_url, "0002")
        assert (await _state(engine))["scan"]["cursor"] == {"after": 40, "since": None}
    finally:
        await engine.dispose()


async def _state(engine: AsyncEngine) -> dict:
    from sqlalchemy import text

    async with engine.connect() as conn:
        value = await conn.scalar(text("SELECT state FROM stream_states WHERE source = 'm'"))
    return json.loads(value) if isinstance(value, str) else value
