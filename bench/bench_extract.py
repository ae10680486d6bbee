"""Extraction throughput and memory: miclinik thirdparties into staging, against a plain fetch loop.

For each database (SQLite, PostgreSQL) and each size (default 100k and 1M records) it starts
the miclinik simulator in its own process, then in fresh worker processes:

* **baseline**: a plain aiohttp loop fetching the same keyset pages and discarding them
  (``json.loads`` of each page, as ``response.json()`` does, to find the next page's id);
* **ceiling**: the same loop reading only the ids with msgspec, every other field skipped:
  the fastest any client can page through this server on this machine;
* **etl**: the real engine (`extract_stream`) staging every record with hashes and checkpoints.

It prints records/s for all three, the ratios etl / baseline (the goal) and etl / ceiling, the ETL
worker's peak RSS, and the RSS growth from the small to the large size. Nothing is asserted.

    python bench/bench_extract.py                     # 100k and 1M, SQLite and PostgreSQL
    python bench/bench_extract.py --sizes 20000 --db sqlite   # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG_ADMIN = os.environ.get("ETL_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
MEMBER_SHARE = 0.6  # share of world customers present in miclinik (its SimulatedSystem.presence)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_simulator(records: int, port: int, payloads: str = "pretty") -> subprocess.Popen:
    scale = int(records / MEMBER_SHARE) + 1
    cmd = [sys.executable, __file__, "--serve", str(scale), str(port), payloads]
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"simulator exited: {process.stdout.read() if process.stdout else ''}") from None
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("simulator did not start in 300 s")


def run_worker(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", *args], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def baseline_worker(base_url: str, page_size: int, parse: str) -> dict:
    """Fetch every keyset page and throw the body away. Keyset paging needs each page's last id
    before the next request: ``parse="json"`` decodes the page as a plain loop would,
    ``parse="ids"`` reads only the ids with the cheapest decoder there is."""
    import aiohttp
    import msgspec

    class Keyed(msgspec.Struct):
        id: str

    ids_of = msgspec.json.Decoder(list[Keyed])
    records, after, started = 0, 0, time.perf_counter()
    headers = {"DOLAPIKEY": "demo-dolibarr-key", "Accept": "application/json"}
    async with aiohttp.ClientSession() as session:
        while True:
            params = {"limit": page_size, "page": 0, "sortfield": "t.rowid", "sortorder": "ASC",
                      "sqlfilters": f"(t.rowid:>:{after})"}  # fmt: skip
            async with session.get(f"{base_url}/thirdparties", params=params, headers=headers) as response:
                body = await response.read()
            if response.status == 404:
                break
            ids = (
                [record.id for record in ids_of.decode(body)] if parse == "ids" else [r["id"] for r in json.loads(body)]
            )
            records += len(ids)
            if len(ids) < page_size:
                break
            after = int(ids[-1])
    elapsed = time.perf_counter() - started
    return {"records": records, "seconds": elapsed, "rate": records / elapsed, "rss_mb": peak_rss_mb()}


async def etl_worker(base_url: str, page_size: int, database_url: str) -> dict:
    from etl.db import migrate
    from etl.db.engine import create_engine
    from etl.http.transport import HttpTransport
    from etl.pipeline.extract import extract_stream
    from etl.sources.miclinik import MiclinikClient
    from etl.sources.miclinik.streams import ThirdpartiesStream
    from tests.support import source_for

    migrate.upgrade(database_url)
    source = source_for("miclinik", base_url, page_size=page_size, concurrency=2)
    engine = create_engine(database_url)
    started = time.perf_counter()
    async with HttpTransport(source) as transport:
        client = MiclinikClient(source, transport)
        await client.open()
        stream = ThirdpartiesStream(client, source)
        result = await extract_stream(engine, stream, source="miclinik", run_id=str(uuid.uuid4()))
    elapsed = time.perf_counter() - started
    await engine.dispose()
    records = result.counts.records
    return {"records": records, "seconds": elapsed, "rate": records / elapsed, "rss_mb": peak_rss_mb()}


def fresh_database(kind: str, tmp: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        path = tmp / f"bench-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite+aiosqlite:///{path}", lambda: path.unlink(missing_ok=True)
    import asyncpg
    from sqlalchemy.engine import make_url

    admin = make_url(PG_ADMIN)
    name = f"etl_bench_{uuid.uuid4().hex[:8]}"

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(
            host=admin.host, port=admin.port or 5432, user=admin.username, database=admin.database
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    return url, lambda: asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def median_run(repeat: int, *args: str) -> dict:
    """The run with the median rate of ``repeat`` fresh worker runs."""
    runs = sorted((run_worker(*args) for _ in range(repeat)), key=lambda run: run["rate"])
    return runs[len(runs) // 2]


def serve(scale: int, port: int, payloads: str) -> None:
    """The miclinik simulator alone, pretty-printing (Dolibarr's default) or compact (production mode)."""
    from etl.simulators.miclinik import MiclinikOptions
    from etl.simulators.serve import serve_forever
    from etl.simulators.world import World

    options = {"miclinik": MiclinikOptions(production_mode=payloads == "compact")}
    world = World(seed=42, scale=scale)
    asyncio.run(serve_forever(["miclinik"], world=world, base_port=port, seed=42, options=options))


def measure(
    records: int, databases: list[str], page_size: int, tmp: Path, repeat: int = 1, payloads: str = "pretty"
) -> list[dict]:
    port = free_port()
    simulator = start_simulator(records, port, payloads)
    base_url = f"http://127.0.0.1:{port}/api/index.php"
    rows = []
    try:
        run_worker("json", base_url, str(page_size))  # warm-up: the simulator builds its rows once
        for kind in databases:
            baseline = median_run(repeat, "json", base_url, str(page_size))
            ceiling = median_run(repeat, "ids", base_url, str(page_size))
            etl_runs = []
            for _ in range(repeat):
                url, drop = fresh_database(kind, tmp)
                try:
                    etl_runs.append(run_worker("etl", base_url, str(page_size), url))
                finally:
                    drop()
            etl = sorted(etl_runs, key=lambda run: run["rate"])[len(etl_runs) // 2]
            rows.append({"db": kind, "size": records, "baseline": baseline, "ceiling": ceiling, "etl": etl})
            figures = (
                f"etl {etl['rate']:>8,.0f}/s  baseline {baseline['rate']:>8,.0f}/s"
                f"  ratio {etl['rate'] / baseline['rate']:.2f}"
                f"  ceiling {ceiling['rate']:>8,.0f}/s  ratio {etl['rate'] / ceiling['rate']:.2f}"
            )
            print(f"{kind:10} {etl['records']:>9,} records  {figures}  etl peak RSS {etl['rss_mb']:.0f} MB", flush=True)
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated record counts")
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure; the median is printed")
    parser.add_argument("--payloads", choices=("pretty", "compact"), default="pretty", help="server JSON layout")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            row
            for size in sizes
            for row in measure(size, args.db.split(","), args.page_size, Path(tmp), args.repeat, args.payloads)
        ]
    print("\nsummary (goals: ratio >= 0.7, peak RSS < 300 MB, RSS at largest <= 110% of smallest)")
    header = ("db", "records", "etl rec/s", "base rec/s", "ratio", "ceil rec/s", "ratio", "RSS MB")
    print(f"{header[0]:10} {header[1]:>9} " + " ".join(f"{h:>10}" if "rec/s" in h else f"{h:>6}" for h in header[2:]))
    for row in rows:
        etl, base, ceiling = row["etl"], row["baseline"], row["ceiling"]
        print(f"{row['db']:10} {etl['records']:>9,} {etl['rate']:>10,.0f} {base['rate']:>10,.0f}"
              f" {etl['rate'] / base['rate']:>6.2f} {ceiling['rate']:>10,.0f} {etl['rate'] / ceiling['rate']:>6.2f}"
              f" {etl['rss_mb']:>7.0f}")  # fmt: skip
    for db in args.db.split(","):
        mine = [r for r in rows if r["db"] == db]
        if len(mine) >= 2:
            growth = mine[-1]["etl"]["rss_mb"] / mine[0]["etl"]["rss_mb"] - 1
            print(f"{db}: RSS growth {mine[0]['size']:,} -> {mine[-1]['size']:,} records: {growth:+.1%}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) > 2 and sys.argv[1] == "--worker":
        role, base_url, page_size = sys.argv[2], sys.argv[3], int(sys.argv[4])
        if role in ("json", "ids"):
            print(json.dumps(asyncio.run(baseline_worker(base_url, page_size, role))))
        else:
            print(json.dumps(asyncio.run(etl_worker(base_url, page_size, sys.argv[5]))))
    else:
        main()
