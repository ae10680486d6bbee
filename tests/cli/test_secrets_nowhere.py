"""A database password and base_url userinfo appear nowhere: no command's output, no log, no table.

The password sits in a PostgreSQL URL: on the PostgreSQL backend the staging database's own URL
(the server trusts local connections, so any password is accepted and the whole program carries
it), on the SQLite backend the reporting URL; on both, an unreachable PostgreSQL URL with it too.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.engine import make_url

from etl.db.engine import create_engine
from etl.db.models import metadata
from tests.cli.test_config_errors import GOOD, ROOT
from tests.conftest import BACKEND, POSTGRES_URL
from tests.support import simulators

PASSWORD = "Pw-Qx9!zK@Vv"  # non-hex letters: no run id, hash or timestamp can contain these fragments
# Whatever form a leak took (raw, percent-encoded, cut at the "@" the way SQLAlchemy reads it).
FRAGMENTS = ("Qx9", "zK@Vv", "zK%40Vv")


def _with_password(url: str) -> str:
    return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def _settings_file(tmp_path: Path, database_url: str, base_urls: dict[str, str]) -> Path:
    data = yaml.safe_load(GOOD)
    for source in data["sources"]:
        source["base_url"] = base_urls[source["kind"]]
    if BACKEND == "postgresql":
        data["database_url"] = _with_password(database_url)
    else:
        data["database_url"] = database_url
    data["reporting_url"] = _with_password(POSTGRES_URL)
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert PASSWORD in make_url(data["reporting_url"]).password
    return path


async def _etl(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `etl` without blocking the loop (the simulators serve from it); exit code and all output."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")} | (env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "etl", *args, cwd=ROOT, env=full_env, stdout=-1, stderr=-1
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


async def _table_text(url: str) -> str:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = [repr(row) for table in metadata.sorted_tables for row in await conn.execute(select(table))]
    finally:
        await engine.dispose()
    assert any("sync_runs" in t.name for t in metadata.sorted_tables) and len(rows) > 100
    return "\n".join(rows)


async def test_database_password_appears_nowhere(tmp_path: Path, database_url: str) -> None:
    """Every command, --debug and JSON logs included, and every table, hold no fragment of the password."""
    kinds = ["miclinik", "mikrobill", "microbizz", "billmanager"]
    async with simulators(kinds, scale=40) as sims:
        path = _settings_file(tmp_path, database_url, {kind: sims[kind].base_url for kind in kinds})
        base = ("--settings", str(path))
        unreachable = {"ETL_DATABASE_URL": _with_password(POSTGRES_URL.replace(":5432", ":1"))}
        # Independent commands side by side: the phases keep the order that matters (upgrade, extract, read).
        outputs = dict(
            zip(
                ["runs before upgrade", "config check", "unreachable"],
                await asyncio.gather(
                    _etl(*base, "--debug", "runs"),
                    _etl(*base, "--debug", "config", "check"),
                    _etl(*base, "--debug", "db", "current", env=unreachable),
                ),
                strict=True,
            )
        )
        outputs["db upgrade"] = await _etl(*base, "db", "upgrade")
        outputs["extract"] = await _etl(*base, "--debug", "--log-format", "json", "extract")
        outputs["runs"], outputs["deletions list"] = await asyncio.gather(
            _etl(*base, "runs"), _etl(*base, "deletions", "list")
        )
        tables = await _table_text(database_url)
    codes = {name: code for name, (code, _) in outputs.items()}
    assert codes == {"runs before upgrade": 2, "config check": 0, "db upgrade": 0, "extract": 0, "runs": 0,
                     "deletions list": 0, "unreachable": 2}, outputs  # fmt: skip
    assert "not migrated" in outputs["runs before upgrade"][1] and "unreachable at" in outputs["unreachable"][1]
    assert '"event": "run finished"' in outputs["extract"][1], "JSON logs were written"
    assert ":***@" in outputs["config check"][1]
    for name, (_, text) in [*outputs.items(), ("tables", (0, tables))]:
        for fragment in FRAGMENTS:
            assert fragment not in text, f"{fragment!r} in {name}"
