"""``etl db upgrade|downgrade|current``: Alembic driven from code with our settings."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str, stdout: io.TextIOBase | None = None) -> Config:
    config = Config(stdout=stdout) if stdout else Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


def _in_thread(fn, *args: object) -> None:  # type: ignore[no-untyped-def]
    # env.py calls asyncio.run(); give it a thread of its own when we are already in a loop.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        fn(*args)
        return
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn(*args)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def upgrade(url: str, revision: str = "head") -> None:
    _in_thread(command.upgrade, alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    _in_thread(command.downgrade, alembic_config(url), revision)


def current(url: str) -> str:
    """The database's revision, with "(head)" when it is the latest."""
    out = io.StringIO()
    _in_thread(command.current, alembic_config(url, stdout=out))
    return out.getvalue().strip()
