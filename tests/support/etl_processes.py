"""`etl` commands as separate processes that start in milliseconds: forked from a server that has
imported etl once.

A ``python -m etl`` process spends about a second importing before it does anything, so a test
that starts twenty of them spends most of its time there. Each process here is still its own OS
process (its own pid, database connections and locks; SIGKILL ends it alone) running
``etl.cli.main`` with its own arguments, environment, working directory and output files. Only
the imports are shared, done once by the fork server before any of them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_CONTEXT = multiprocessing.get_context("forkserver")
# What `etl extract` and `etl runs` import; the server imports it once, before its first fork.
_CONTEXT.set_forkserver_preload(["tests.support.etl_processes", "etl.cli", "jobs.extract", "etl.sources"])


def start_etl(args: list[str], env: dict[str, str], stdout: Path, stderr: Path) -> multiprocessing.process.BaseProcess:
    """Start ``etl ARGS`` in a process of its own, its output appended to ``stdout`` and ``stderr``."""
    process = _CONTEXT.Process(target=_run_etl, args=(args, env, str(stdout), str(stderr)), daemon=False)
    process.start()
    return process


async def finished(process: multiprocessing.process.BaseProcess, timeout: float = 60) -> int:
    """The process's exit code once it has ended (a negative signal number if killed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while process.exitcode is None:
        if loop.time() > deadline:
            process.kill()
            raise TimeoutError(f"etl process {process.pid} still running after {timeout} s")
        await asyncio.sleep(0.02)
    return process.exitcode


def _run_etl(args: list[str], env: dict[str, str], stdout: str, stderr: str) -> None:
    # In the child: the console script's own work, as `python -m etl ARGS` run from the project root.
    for fd, path in ((1, stdout), (2, stderr)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, fd)
        os.close(target)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(ROOT)
    sys.argv = ["etl", *args]
    from etl.cli import main

    main()
