"""The demo job: the built-in simulators in-process, every source extracted into staging, counts.

It is what a newcomer runs first (`etl demo`): nothing outside this machine is touched.
The simulators listen on free loopback ports and the configured sources are pointed at
them by kind, so a running `etl simulate` on the default ports does not get in the way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from etl.db import migrate
from etl.db.engine import create_engine
from etl.db.staging import RejectedRecord, StagedRecord
from etl.settings import Settings
from etl.simulators.serve import running_simulators
from etl.simulators.world import World
from jobs.extract import ExtractReport, run_extract


@dataclass
class DemoResult:
    report: ExtractReport
    staged: list[tuple[str, str, int]]
    rejected: int


def point_at_simulators(settings: Settings, base_urls: dict[str, str]) -> Settings:
    """A copy of ``settings`` whose sources talk to the simulator of their kind."""
    sources = [
        source.model_copy(update={"base_url": base_urls[source.kind]})
        for source in settings.sources
        if source.enabled and source.kind in base_urls
    ]
    return settings.model_copy(update={"sources": sources})


async def staged_counts(url: str) -> tuple[list[tuple[str, str, int]], int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(StagedRecord.source, StagedRecord.entity, func.count())
                .where(StagedRecord.deleted_at.is_(None))
                .group_by(StagedRecord.source, StagedRecord.entity)
                .order_by(StagedRecord.source, StagedRecord.entity)
            )
            rejected = await conn.scalar(select(func.count()).select_from(RejectedRecord))
            return [(r[0], r[1], int(r[2])) for r in rows], int(rejected or 0)
    finally:
        await engine.dispose()


async def run_demo(settings: Settings, *, scale: int, seed: int, faults: str, full: bool = False) -> DemoResult:
    """Migrate, start the simulators, extract everything, count what was staged."""
    migrate.upgrade(settings.database_url)
    world = World(seed=seed, scale=scale)
    kinds = sorted({s.kind for s in settings.sources if s.enabled})
    async with running_simulators(kinds, world=world, faults=faults, seed=seed, base_port=0) as simulators:
        demo_settings = point_at_simulators(settings, simulators.base_urls)
        report = await run_extract(demo_settings, full=full, trigger="demo")
    staged, rejected = await staged_counts(settings.database_url)
    return DemoResult(report, staged, rejected)
