"""The replay server as the benchmark runs it: its own process, started, watched and always stopped."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
from collections import deque
from typing import Any

import psutil

from bench.workers import ROOT

STARTUP_SECONDS = 300  # a million records of each resource take a few seconds each


class ReplayServer:
    """``python -m bench.replay_server`` in a child process; ``with`` stops it whatever happens."""

    def __init__(self, records: int, layout: str, *, delay_ms: float = 0.0, slots: int = 0) -> None:
        self.records, self.layout, self.delay_ms, self.slots = records, layout, delay_ms, slots
        self.key = secrets.token_hex(12)
        self.process: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] = {}
        self._said: deque[str] = deque(maxlen=50)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ready['port']}/api/index.php"

    def __enter__(self) -> ReplayServer:
        command = [sys.executable, "-m", "bench.replay_server", "--records", str(self.records), "--key", self.key,
                   "--layout", self.layout, "--delay-ms", str(self.delay_ms), "--slots", str(self.slots)]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        try:
            self.ready = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        # Drained in the background: a server that logs must never block on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _wait_ready(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        timer = threading.Timer(STARTUP_SECONDS, self.process.kill)
        timer.start()
        try:
            for line in self.process.stdout:
                self._said.append(line.rstrip())
                if line.startswith("{"):
                    return json.loads(line)
        finally:
            timer.cancel()
        raise RuntimeError("the replay server did not start:\n" + "\n".join(self._said))

    def _drain(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            for line in self.process.stdout:
                self._said.append(line.rstrip())

    def cpu_seconds(self) -> float:
        """CPU the server process has used so far (user + system)."""
        if self.process is None:
            return 0.0
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def rss_mb(self) -> float:
        return psutil.Process(self.process.pid).memory_info().rss / 2**20 if self.process else 0.0

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        self.stop()
