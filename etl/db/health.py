"""Fail fast, with one line, when a configured database cannot be reached."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from etl.db.engine import create_engine
from etl.redaction import sanitize_url
from etl.settings import ConfigError


async def ensure_reachable(url: str, settings_file: str, key: str = "database_url", timeout: float = 10.0) -> None:
    """Connect once; raise :class:`ConfigError` naming the key when the database is unreachable."""
    engine = create_engine(url)
    try:
        async with asyncio.timeout(timeout):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0] or type(exc).__name__
        raise ConfigError(settings_file, key, f"database unreachable at {sanitize_url(url)}: {reason}") from None
    finally:
        await engine.dispose()
