"""Test databases: a fresh SQLite file, or a fresh PostgreSQL database, per test.

``ETL_TEST_DATABASE=postgresql`` runs every database test on PostgreSQL (server from
``ETL_TEST_POSTGRES_URL``); an unreachable server stops the whole run with an error,
never a skip, so CI cannot pass without having tested PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

# A fifth kind defined in the test tree, registered the way the built-ins are (see its docstring).
import tests.toykind  # noqa: F401
from etl.db import migrate
from etl.db.engine import create_engine

BACKEND = os.environ.get("ETL_TEST_DATABASE", "sqlite")
POSTGRES_URL = os.environ.get("ETL_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _postgres_admin(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        url = make_url(POSTGRES_URL)
        conn = await asyncpg.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def pytest_report_header(config: pytest.Config) -> str:
    where = make_url(POSTGRES_URL).render_as_string(hide_password=True) if BACKEND == "postgresql" else "SQLite files"
    return f"billing-etl test database: {BACKEND} ({where})"


def pytest_sessionstart(session: pytest.Session) -> None:
    if BACKEND not in ("sqlite", "postgresql"):
        pytest.exit(f"ETL_TEST_DATABASE must be sqlite or postgresql, not {BACKEND!r}", returncode=4)
    if BACKEND == "postgresql":
        try:
            _postgres_admin("SELECT 1")
        except Exception as exc:
            pytest.exit(f"PostgreSQL unreachable at {POSTGRES_URL}: {exc}", returncode=3)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``postgresql`` belong to the PostgreSQL run: deselected (not skipped) on SQLite."""
    if BACKEND == "postgresql":
        return
    chosen = [item for item in items if item.get_closest_marker("postgresql") is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in chosen])
        items[:] = chosen


@pytest.fixture
def database_url(tmp_path) -> Iterator[str]:
    """An empty database of the configured backend, dropped afterwards."""
    if BACKEND == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'staging.db'}"
        return
    yield from _postgres_database()


def _postgres_database(template: str | None = None) -> Iterator[str]:
    name = f"etl_test_{uuid.uuid4().hex[:12]}"
    _postgres_admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database brought to head by the migrations themselves, once per session: each test's
    migrated database is a copy of it (a PostgreSQL template, a copied SQLite file), which spares
    every test the migrations' own time. tests/db/test_migrations.py still runs them one by one."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "staging.db"
        migrate.upgrade(f"sqlite+aiosqlite:///{path}")
        yield str(path)
        return
    for url in _postgres_database():
        migrate.upgrade(url)
        yield make_url(url).database or ""


@pytest.fixture
def migrated_url(tmp_path, migrated_template: str) -> Iterator[str]:
    """A database at the head revision."""
    if BACKEND == "sqlite":
        shutil.copyfile(migrated_template, tmp_path / "staging.db")
        yield f"sqlite+aiosqlite:///{tmp_path / 'staging.db'}"
        return
    yield from _postgres_database(template=migrated_template)


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_url)
    yield engine
    await engine.dispose()
