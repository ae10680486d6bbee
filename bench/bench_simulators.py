"""Simulator throughput and the world's generation cost. Prints figures; asserts nothing.

For each simulator it starts a server process (pinned to one core when the machine has two or more)
and drives that system's main list read from this process (pinned to another core):

* miclinik: ``GET /products?limit=100&page=N``, paging sequentially and wrapping around;
* MikroBILL: batch reads ``Process("API.Client", [<id>.AutorizeInfo.Name, .BillingInfo.Money,
  .StatusInfo.BlockReason] x 100 clients)``, after one ``API.GetClients``;
* Microbizz: ``GetCustomersByLastChange`` from 1970-01-01, following ``resumekey`` chunks;
* BILLmanager: ``func=account`` pages of ``p_cnt`` rows, plus one unpaged list of every account.

Records/s is per wall-clock second; "rec/srv-CPU-s" divides by the CPU the server process used,
which stays meaningful when the client or other work is the bottleneck. Then, in a fresh process,
it times ``World(seed, scale)`` generating every customer with accounts, orders, payments and
each system's noisy spelling, and reports that process's peak RSS.

    python bench/bench_simulators.py            # world of 100,000 customers, 5 s per simulator
    python bench/bench_simulators.py --quick    # 10,000 customers, 1.5 s per simulator
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etl.simulators.noise import spell
from etl.simulators.registry import BUILTIN
from etl.simulators.serve import running_simulators
from etl.simulators.world import World

SERVER_CORE, CLIENT_CORE = 0, 1
MB = 1024 * 1024


def pin(core: int) -> None:
    """Keep this process on one core, when the platform and the machine allow it."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


def peak_rss_bytes() -> int:
    """This process's peak RSS: ``VmHWM``, as Linux keeps ``ru_maxrss`` across exec (a spawned child
    would report its large parent's size)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # not Linux
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def spawn(target: Any, *args: Any) -> tuple[Any, Connection]:
    """Start ``target(*args, conn)`` in a fresh interpreter; returns the process and our end of the pipe."""
    context = mp.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=target, args=(*args, theirs), daemon=True)
    process.start()
    return process, ours


# -- server side (child process) --------------------------------------------


def serve_child(system: str, seed: int, scale: int, conn: Connection) -> None:
    """Child process body: serve one simulator until the parent says stop."""
    pin(SERVER_CORE)
    asyncio.run(_serve(system, seed, scale, conn))


async def _serve(system: str, seed: int, scale: int, conn: Connection) -> None:
    started = time.perf_counter()
    async with running_simulators([system], world=World(seed, scale), base_port=0) as running:
        sim = running[system]
        conn.send({"base_url": sim.base_url, "credentials": sim.credentials, "start_s": time.perf_counter() - started})
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        conn.send({"peak_rss": peak_rss_bytes()})


@dataclass
class Server:
    """A simulator running in its own process."""

    system: str
    process: Any
    conn: Connection
    base_url: str
    credentials: dict[str, str]
    start_s: float

    @classmethod
    def start(cls, system: str, seed: int, scale: int) -> Server:
        process, conn = spawn(serve_child, system, seed, scale)
        info = conn.recv()
        return cls(system, process, conn, info["base_url"], info["credentials"], info["start_s"])

    def cpu_seconds(self) -> float:
        """CPU (user + system) the server process has used so far."""
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> int:
        """Stop the server; returns its peak RSS in bytes."""
        self.conn.send("stop")
        peak = self.conn.recv()["peak_rss"]
        self.process.join(10)
        return peak


# -- client side: one reader per system -------------------------------------


@dataclass
class Reader:
    """Issues one system's main list read, one call at a time; ``call`` returns the records it got."""

    server: Server
    session: aiohttp.ClientSession
    index: int = 0
    system: ClassVar[str]
    label: ClassVar[str]
    notes: list[str] = field(default_factory=list)

    async def open(self) -> None:
        """Log in, or whatever must happen once before the measured calls (reader 0 also notes one-off reads)."""

    async def call(self) -> int:
        """One request of the list read; returns how many records it carried."""
        raise NotImplementedError


class MiclinikReader(Reader):
    system, label = "miclinik", "GET /products?limit=100 (sequential pages)"
    page = 0

    async def open(self) -> None:
        self.page = self.index * 7

    async def call(self) -> int:
        headers = {"DOLAPIKEY": self.server.credentials["api_key"]}
        params = {"limit": "100", "page": str(self.page)}
        async with self.session.get(f"{self.server.base_url}/products", params=params, headers=headers) as response:
            rows = await response.json() if response.status == 200 else []
        self.page = self.page + 1 if len(rows) == 100 else 0
        return len(rows)


class MikrobillReader(Reader):
    system, label = "mikrobill", "Process batch: 100 clients x 3 fields"
    clients: list[Any]
    position = 0
    token = ""

    async def open(self) -> None:
        keys = ("login", "password", "crypto_key_1", "crypto_key_2")
        answer = await self._post("/connect", {key: self.server.credentials[key] for key in keys})
        self.token = answer["return"]
        started = time.perf_counter()
        self.clients = (await self._post("/process", {"path": "API.GetClients"}))["return"]
        if self.index == 0:
            self.notes.append(f"API.GetClients: {len(self.clients):,} ids in {time.perf_counter() - started:.2f} s")

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        headers = {"X-MikroBILL-Session": self.token} if self.token else {}
        async with self.session.post(self.server.base_url + path, json=body, headers=headers) as response:
            return await response.json()

    async def call(self) -> int:
        batch = self.clients[self.position : self.position + 100]
        self.position = self.position + 100 if self.position + 100 < len(self.clients) else 0
        fields = ("AutorizeInfo.Name", "BillingInfo.Money", "StatusInfo.BlockReason")
        args = [f"{client}.{name}" for client in batch for name in fields]
        items = await self._post("/process", {"path": "API.Client", "args": args})
        assert all(item["code"] == 0 for item in items), items[:3]
        return len(batch)


class MicrobizzReader(Reader):
    system, label = "microbizz", "GetCustomersByLastChange chunks"
    resumekey: str | None = None

    async def call(self) -> int:
        creds = self.server.credentials
        command = {"command": "GetCustomersByLastChange", "changedate": "1970-01-01", "changetime": "00:00:00"}
        command |= {"resumekey": self.resumekey} if self.resumekey else {}
        envelope: dict[str, Any] = {key: creds[key] for key in ("apikey", "username", "password")}
        envelope |= {"contract": int(creds["contract"]), "commands": [command]}
        async with self.session.post(self.server.base_url, data={"json": json.dumps(envelope)}) as response:
            result = (await response.json(content_type=None))["results"][0]
        self.resumekey = result.get("resumekey")
        return len(result["customers"])


class BillmanagerReader(Reader):
    system, label = "billmanager", "func=account, p_cnt=1000 pages"
    sid = ""
    page = 1

    async def open(self) -> None:
        login = {key: self.server.credentials[key] for key in ("username", "password")}
        self.sid = (await self._get({"func": "auth", **login}))["auth"]["$id"]
        if self.index > 0:
            return
        started = time.perf_counter()
        doc = await self._get({"func": "account", "auth": self.sid, "p_cnt": "-1"})
        count = len(doc.get("elem", []))
        self.notes.append(f"func=account unpaged: {count:,} accounts in {time.perf_counter() - started:.2f} s")

    async def _get(self, params: dict[str, str]) -> dict[str, Any]:
        async with self.session.get(self.server.base_url, params={"out": "json", **params}) as response:
            return (await response.json(content_type=None))["doc"]

    async def call(self) -> int:
        doc = await self._get({"func": "account", "auth": self.sid, "p_cnt": "1000", "p_num": str(self.page)})
        rows = len(doc.get("elem", []))
        self.page = self.page + 1 if rows == 1000 else 1
        return rows


READERS: dict[str, type[Reader]] = {reader.system: reader for reader in Reader.__subclasses__()}


@dataclass
class Throughput:
    """One simulator's measured read rate, server CPU, start time and memory."""

    system: str
    label: str
    records: int
    calls: int
    seconds: float
    server_cpu: float
    start_s: float
    peak_rss: int
    notes: list[str]


async def measure(server: Server, seconds: float, clients: int) -> Throughput:
    """Run ``clients`` readers side by side, each calling sequentially, for ``seconds`` (after a warm-up call)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        readers = [READERS[server.system](server, session, index) for index in range(clients)]
        for reader in readers:
            await reader.open()
            await reader.call()
        totals = [0, 0]
        cpu_before, started = server.cpu_seconds(), time.perf_counter()

        async def drive(reader: Reader) -> None:
            while time.perf_counter() - started < seconds:
                got = await reader.call()  # not `totals[0] += await ...`: that reads totals[0] before awaiting
                totals[0] += got
                totals[1] += 1

        await asyncio.gather(*(drive(reader) for reader in readers))
        elapsed, cpu = time.perf_counter() - started, server.cpu_seconds() - cpu_before
    label = readers[0].label + (f" x{clients} clients" if clients > 1 else "")
    return Throughput(server.system, label, *totals, elapsed, cpu, server.start_s, 0, readers[0].notes)


def bench_simulator(system: str, seed: int, scale: int, seconds: float, clients: int) -> Throughput:
    """Start ``system`` in its own process, measure its main list read, stop it."""
    server = Server.start(system, seed, scale)
    try:
        result = asyncio.run(measure(server, seconds, clients))
    finally:
        peak_rss = server.stop()
    result.peak_rss = peak_rss
    return result


# -- world generation (child process) ---------------------------------------


def generate_child(seed: int, scale: int, conn: Connection) -> None:
    """Child process body: generate the whole world once, report time, counts and peak RSS."""
    started, cpu_started = time.perf_counter(), time.process_time()
    world = World(seed, scale)
    counts = dict.fromkeys(("customers", "accounts", "orders", "payments", "spellings"), 0)
    for customer_id in range(1, scale + 1):
        customer = world.customer(customer_id)
        counts["customers"] += 1
        counts["accounts"] += len(world.accounts_of(customer))
        counts["orders"] += len(world.orders_of(customer))
        counts["payments"] += len(world.payments_of(customer))
        for system in BUILTIN:
            if world.present_in(customer_id, system):
                spell(seed, customer, system)
                counts["spellings"] += 1
    generated, generated_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    started = time.perf_counter()
    members = {system: len(world.members(system)) for system in BUILTIN}
    conn.send(
        {
            "generate_s": generated,
            "generate_cpu_s": generated_cpu,
            "members_s": time.perf_counter() - started,
            "counts": counts,
            "members": members,
            "peak_rss": peak_rss_bytes(),
        }
    )


def bench_world(seed: int, scale: int) -> dict[str, Any]:
    """Time the whole world's generation in a fresh process."""
    process, conn = spawn(generate_child, seed, scale)
    report = conn.recv()
    process.join(10)
    return report


# -- report -----------------------------------------------------------------


HEAD = ("system", "main list read", "records/s", "calls/s", "rec/call", "srv CPU", "rec/srv-CPU-s", "start s", "RSS MB")


def _row(r: Throughput) -> tuple[str, ...]:
    per_cpu = f"{r.records / r.server_cpu:,.0f}" if r.server_cpu else "-"
    rates = (f"{r.records / r.seconds:,.0f}", f"{r.calls / r.seconds:,.1f}", f"{r.records / max(r.calls, 1):,.0f}")
    return (
        r.system,
        r.label,
        *rates,
        f"{r.server_cpu / r.seconds:.0%}",
        per_cpu,
        f"{r.start_s:.2f}",
        f"{r.peak_rss / MB:,.0f}",
    )


def print_throughput(results: list[Throughput]) -> None:
    """The simulator table, then one line per note."""
    rows = [HEAD, *map(_row, results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEAD))]
    for index, row in enumerate(rows):
        print(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            print("  ".join("-" * w for w in widths))
    for r in results:
        for note in r.notes:
            print(f"  {r.system}: {note}")


def print_world(scale: int, report: dict[str, Any]) -> None:
    """The world generation figures."""
    counts = report["counts"]
    per_customer = report["generate_s"] / counts["customers"] * 1e6
    print(f"World(seed, {scale:,}): every customer with accounts, orders, payments and each system's spelling")
    wall, cpu = report["generate_s"], report["generate_cpu_s"]
    print(f"  generated in {wall:.2f} s wall, {cpu:.2f} s CPU ({per_customer:.0f} us wall per customer)")
    print("  " + ", ".join(f"{value:,} {name}" for name, value in counts.items()))
    print(f"  members() of all four systems: {report['members_s']:.2f} s ({report['members']})")
    print(f"  peak RSS of the generating process: {report['peak_rss'] / MB:,.0f} MB")


def main() -> None:
    """Parse the flags, run every benchmark, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 customers and 1.5 s per simulator")
    parser.add_argument("--scale", type=int, help="customers in the world (default 100,000; 10,000 with --quick)")
    parser.add_argument("--seconds", type=float, help="measured seconds per simulator (default 5; 1.5 with --quick)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--clients", type=int, default=1, help="sequential readers side by side (default 1)")
    parser.add_argument("--systems", nargs="*", default=list(BUILTIN), choices=BUILTIN)
    args = parser.parse_args()
    scale = args.scale or (10_000 if args.quick else 100_000)
    seconds = args.seconds or (1.5 if args.quick else 5.0)
    pin(CLIENT_CORE)
    print(f"Simulators over World(seed={args.seed}, scale={scale:,}); {seconds:g} s per simulator; ", end="")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print_throughput([bench_simulator(system, args.seed, scale, seconds, args.clients) for system in args.systems])
    print()
    print_world(scale, bench_world(args.seed, scale))


if __name__ == "__main__":
    main()
