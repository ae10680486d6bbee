"""The models and the Alembic revisions describe the same schema, on every backend."""

from __future__ import annotations

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
