"""Alembic environment, async, driven by etl.settings like the rest of the program."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from etl.db.engine import create_engine
from etl.db.models import metadata

config = context.config


def _url() -> str:
    # `etl db ...` passes the resolved URL; a bare `alembic` run reads the settings itself.
    url = config.attributes.get("url")
    if url:
        return url
    from etl.settings import load_settings

    return load_settings().database_url


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
        return
    engine = create_engine(_url())
    async with engine.connect() as conn:
        await conn.run_sync(_run_sync)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
