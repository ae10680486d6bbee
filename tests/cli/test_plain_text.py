"""Text from a server is printed as written: never read as console markup."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import yaml
from aiohttp import web

from tests.cli.test_config_errors import GOOD, ROOT

# "[/red]" closes a tag never opened (rich raises MarkupError); "[bold]x[/bold]" and "[id]" would vanish.
BRACKETS = "[/red] [bold]x[/bold] [id]"
# A clear-screen and a bell: a terminal would obey them were they printed raw.
ESCAPES = "\x1b[2J\x07"


async def _dolibarr_refusing_in_brackets() -> tuple[web.AppRunner, str]:
    """A Dolibarr whose GET /status answers, and which refuses every list with a bracketed reason."""

    async def status(request: web.Request) -> web.Response:
        return web.json_response({"success": {"code": 200, "timestamp_now_utc": 1_700_000_000}})

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": {"code": 400, "message": BRACKETS + ESCAPES}}, status=400)

    app = web.Application()
    app.router.add_get("/api/index.php/status", status)
    app.router.add_get("/api/index.php/{resource}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/api/index.php"


async def test_server_text_with_brackets_renders_literally(tmp_path: Path, migrated_url: str) -> None:
    """A server's words holding "[/red]" and "[bold]x[/bold]" reach the summary and the error line intact,
    its control characters shown escaped, never sent to the terminal: exit 1, no traceback."""
    runner, base_url = await _dolibarr_refusing_in_brackets()
    try:
        data = yaml.safe_load(GOOD)
        data["database_url"] = migrated_url
        data["sources"] = [{**data["sources"][0], "base_url": base_url}]
        path = tmp_path / "settings.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "etl", "--settings", str(path), "extract", cwd=ROOT, env=env, stdout=-1, stderr=-1
        )
        out, err = (part.decode() for part in await asyncio.wait_for(process.communicate(), 60))
    finally:
        await runner.cleanup()
    assert process.returncode == 1, err
    assert "Traceback" not in out + err
    error_lines = [line for line in err.splitlines() if line.startswith("run failed: ")]
    assert len(error_lines) == 1 and BRACKETS in error_lines[0], err
    assert "miclinik.orders: " in error_lines[0]
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\\x1b[2J\\x07" in error_lines[0] and "\\x1b[2J\\x07" in out
    assert BRACKETS in out, out  # the summary table
