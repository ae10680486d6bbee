"""Helpers shared by tests: simulators on real sockets and settings pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from etl.db.staging import StagedRecord
from etl.settings import Settings, SourceSettings, load_settings
from etl.simulators.serve import RunningSimulators, running_simulators
from etl.simulators.world import World

ROOT = Path(__file__).resolve().parents[2]
# Recorded from a real Dolibarr server (copied from shared/fixtures): they travel with the project.
DOLIBARR_FIXTURES = ROOT / "tests" / "fixtures" / "dolibarr"


def require_fixtures() -> None:
    """Fail when the recorded fixtures are missing: a test never passes by skipping them."""
    if not (DOLIBARR_FIXTURES / "README.md").is_file():
        pytest.fail(f"recorded Dolibarr fixtures not found at {DOLIBARR_FIXTURES}")


FAST_RETRIES = {"backoff_initial": 0.01, "backoff_max": 0.05, "max_attempts": 12}


def shipped_settings(database_url: str | None = None) -> Settings:
    """settings.yaml as shipped (demo credentials), optionally on another database."""
    settings = load_settings(ROOT / "settings.yaml")
    return settings.model_copy(update={"database_url": database_url}) if database_url else settings


# Settings of kinds the shipped settings.yaml does not know (plug-ins defined in the test tree add theirs).
EXTRA_SOURCE_SETTINGS: dict[str, dict[str, Any]] = {}


def source_for(kind: str, base_url: str, **overrides: Any) -> SourceSettings:
    """The shipped source of ``kind``, pointed at ``base_url``, with quick retries for tests."""
    source = next((s.model_dump() for s in shipped_settings().sources if s.kind == kind), None)
    if source is None:
        source = EXTRA_SOURCE_SETTINGS[kind]
    # Validated again, so overrides given as plain strings become SecretStr like the file's.
    return SourceSettings(**{**source, "base_url": base_url, **FAST_RETRIES, **overrides})


@asynccontextmanager
async def simulators(
    kinds: list[str], *, scale: int = 300, seed: int = 7, faults: str = "none", options: dict | None = None
) -> AsyncIterator[RunningSimulators]:
    async with running_simulators(
        kinds, world=World(seed=seed, scale=scale), faults=faults, seed=seed, base_port=0, options=options
    ) as running:
        yield running


async def staged_keys(engine: AsyncEngine, source: str) -> set[tuple[str, str]]:
    """(entity, source_id) of every live staged record of ``source``."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(StagedRecord.entity, StagedRecord.source_id).where(
                StagedRecord.source == source, StagedRecord.deleted_at.is_(None)
            )
        )
        return {(r[0], r[1]) for r in rows}


async def staged_content(engine: AsyncEngine, source: str | None = None) -> set[tuple[str, str, str, str]]:
    """(source, entity, source_id, content_hash) of every live staged record."""
    query = select(StagedRecord.source, StagedRecord.entity, StagedRecord.source_id, StagedRecord.content_hash).where(
        StagedRecord.deleted_at.is_(None)
    )
    if source:
        query = query.where(StagedRecord.source == source)
    async with engine.connect() as conn:
        return {tuple(r) for r in await conn.execute(query)}  # type: ignore[misc]


def truth_keys(state: Any, entities: set[str]) -> set[tuple[str, str]]:
    """(entity, source_id) the simulator serves live (tombstones left out, as staging marks them deleted),
    limited to the entities a source stages."""
    return {
        (row.entity, str(row.source_id))
        for row in state.truth()
        if row.entity in entities and not getattr(row, "deleted", False)
    }
