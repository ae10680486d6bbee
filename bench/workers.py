"""Each measurement in a fresh process, so one run's memory, caches and imports never reach the next.

    python -m bench.workers etl|reference|ceiling '<json keyword arguments>'

runs one of :func:`bench.etl_run.extract_thirdparties`, :func:`bench.reference.read_list` or
:func:`bench.ceiling.write_ceiling` and prints its result as one JSON line on stdout, with the
process's peak RSS. That is ``VmHWM``, the high-water mark of this process's own memory; it is what
``ru_maxrss`` reports too, except that Linux carries ``ru_maxrss`` over an exec, so a child started
by a large parent could report the parent's size.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class WorkerFailed(RuntimeError):
    """A measurement's process ended badly; the message holds the end of what it wrote."""


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(role: str, **params: Any) -> dict[str, Any]:
    """Run one measurement in a new interpreter and return what it printed."""
    command = [sys.executable, "-m", "bench.workers", role, json.dumps(params)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        said = (done.stderr or done.stdout).strip()[-3000:]
        raise WorkerFailed(f"{role} worker exited with {done.returncode}:\n{said}")
    result = json.loads(lines[-1])
    result["stderr"] = done.stderr.strip()[-2000:]
    return result


async def _run(role: str, params: dict[str, Any]) -> dict[str, Any]:
    if role == "etl":
        from bench.etl_run import extract_thirdparties

        return await extract_thirdparties(**params)
    if role == "reference":
        from bench.reference import read_list

        return await read_list(**params)
    if role == "ceiling":
        from bench.ceiling import write_ceiling

        return await write_ceiling(**params)
    raise SystemExit(f"unknown worker role {role!r}")


def main() -> None:
    role, params = sys.argv[1], json.loads(sys.argv[2])
    result = asyncio.run(_run(role, params))
    print(json.dumps(result | {"peak_rss_mb": peak_rss_mb()}), flush=True)


if __name__ == "__main__":
    main()
