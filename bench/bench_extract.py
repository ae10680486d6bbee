"""Extraction throughput and memory: the ETL against what the network and the database allow.

One run measures, for each payload layout, size and database, in fresh processes each:

* **ETL**: the real engine (``extract_source``, stream ``thirdparties``) staging every record into a
  freshly migrated database (:mod:`bench.etl_run`): records/s and the worker's peak RSS;
* **reference**: a plain aiohttp loop with the same requests in flight, the id range split into
  ``concurrency`` keyset partitions as the ETL splits it, ``json.loads`` of each page, pages
  discarded (:mod:`bench.reference`): how fast this machine reads the server;
* **ceiling**: the same rows (payload text, ids, hashes) written straight through the driver, no
  HTTP, one transaction per ``commit_rows`` (:mod:`bench.ceiling`): how fast the database writes.

The server is :mod:`bench.replay_server`, a Dolibarr list server of its own process that cuts pages
from templates of recorded records, so it costs a few µs per record: its CPU share is printed for
each run to show it is not the bottleneck. Each line prints the ETL's records/s, the reference's,
the ceiling's rows/s, the ratio ETL / min(reference, ceiling), the ETL's peak RSS (``VmHWM``) and
the disk each database took. Then a summary, peak-RSS growth from the smallest to the largest size,
and the slow-server check: the replay server holding each request 50 ms in one of 4 slots (a PHP
server with 4 workers), the ETL with its default partitions against one partition (``partitions=1``).
Goals are printed next to the figures; nothing is asserted.

    python bench/bench_extract.py                                 # 100k and 1M, SQLite and PostgreSQL
    python bench/bench_extract.py --sizes 20000 --db sqlite --skip-slow     # a quick look (~10 s)
    python bench/bench_extract.py --search-pages 500,1000,2000    # best page size picked at the smallest size
    python bench/bench_extract.py --payloads compact              # production-mode servers (pretty,compact: both)

PostgreSQL: a fresh database per measurement on the server of ``ETL_TEST_POSTGRES_URL`` (default
postgresql+asyncpg://postgres@127.0.0.1:5432/test), dropped afterwards. SQLite files go to a
temporary folder (``--tmp``); a 1M-record staging file takes ~4 GB, and the run says what it needs
before it starts, refusing when the disk is short. Every database and file is removed at the end,
also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import report
from bench.databases import KINDS, OVERHEAD, Databases, disk_needed, free_bytes
from bench.etl_run import TUNING
from bench.replay_process import ReplayServer
from bench.replay_records import LAYOUTS, Catalog, Layout
from bench.replay_resources import THIRDPARTIES
from bench.workers import WorkerFailed, run_worker
from etl.settings import SourceSettings

PG_ADMIN = os.environ.get("ETL_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
DEFAULT_COMMIT_ROWS = SourceSettings.model_fields["commit_rows"].default


class Bench:
    """One run's settings, its databases, and the measurements made so far."""

    def __init__(self, args: argparse.Namespace, databases: Databases) -> None:
        self.args, self.databases = args, databases
        self.tuning = {name: getattr(args, name) for name in TUNING}
        self.commit_rows = args.commit_rows or DEFAULT_COMMIT_ROWS
        self.ceilings: dict[tuple[str, int], dict[str, Any]] = {}
        self.rows: list[report.Measurement] = []

    def etl(self, server: ReplayServer, kind: str, page: int, *, partitions: int | None = None) -> dict[str, Any]:
        """One ETL run into a fresh database, with the server's CPU share and the disk the database took."""
        with self.databases.fresh(kind) as database:
            params = {"database_url": database.url, "base_url": server.base_url, "key": server.key,
                      "page_size": page, "concurrency": self.args.concurrency,
                      "partitions": self.args.partitions if partitions is None else partitions,
                      "tuning": self.tuning}  # fmt: skip
            result = _with_server_cpu(server, lambda: run_worker("etl", **params))
            result["db_bytes"] = self.databases.size_bytes(database)
        if problem := report.etl_problem(result, server.records):
            print(f"  !! {problem}\n{result['stderr']}")
        return result

    def reference(self, server: ReplayServer, page: int) -> dict[str, Any]:
        params = {"base_url": server.base_url, "key": server.key, "page_size": page,
                  "concurrency": self.args.concurrency}  # fmt: skip
        return _with_server_cpu(server, lambda: run_worker("reference", **params))

    def ceiling(self, kind: str, size: int) -> dict[str, Any]:
        """The database's bulk-write rate for ``size`` rows; once per database and size (no HTTP in it)."""
        if (kind, size) not in self.ceilings:
            with self.databases.fresh(kind) as database:
                result = run_worker("ceiling", url=database.url, records=size, commit_rows=self.commit_rows)
                result["db_bytes"] = self.databases.size_bytes(database)
            print(f"  ceiling {kind} {size:,} rows in transactions of {self.commit_rows:,}: "
                  f"{result['rate']:,.0f} rows/s, {report.mb(result['db_bytes'])} on disk")  # fmt: skip
            self.ceilings[kind, size] = result
        return self.ceilings[kind, size]

    def best_pages(self, server: ReplayServer, kinds: list[str]) -> dict[str, int]:
        """Per database, the ETL's fastest page size among ``--search-pages`` at this size."""
        candidates = [int(p) for p in self.args.search_pages.split(",") if p.strip()]
        if not candidates:
            return dict.fromkeys(kinds, self.args.best_page)
        best = {}
        for kind in kinds:
            rates = {page: self.etl(server, kind, page)["rate"] for page in candidates}
            best[kind] = max(rates, key=rates.__getitem__)
            tried = ", ".join(f"{page}: {rate:,.0f}/s" for page, rate in rates.items())
            print(f"  page search {kind} at {server.records:,} records: {tried} -> best page {best[kind]}")
        return best

    def matrix(self, sizes: list[int], kinds: list[str], layouts: list[str]) -> None:
        best: dict[str, int] | None = None
        for layout in layouts:
            for size in sizes:
                with ReplayServer(size, layout) as server:
                    peak = server.ready["peak_rss_mb"]
                    print(f"\n{layout} payloads, {size:,} records: replay server {server.rss_mb():.0f} MB RSS"
                          f" ({peak:.0f} MB at most, while building its records)", flush=True)  # fmt: skip
                    best = best or self.best_pages(server, kinds)
                    pages = sorted({report.SMALL_PAGE, *best.values()})
                    references = {page: self.reference(server, page) for page in pages}
                    for page, ref in references.items():
                        print(f"  reference page {page}: {ref['rate']:,.0f} records/s in {ref['seconds']:.1f} s"
                              f" ({ref['requests']:,} requests, server CPU {ref['server_cpu']:.0%})")  # fmt: skip
                    for kind in kinds:
                        self.measure(server, layout, kind, size, sorted({report.SMALL_PAGE, best[kind]}), references)

    def measure(self, server: ReplayServer, layout: str, kind: str, size: int, pages: list[int],
                references: dict[int, dict[str, Any]]) -> None:  # fmt: skip
        ceiling = self.ceiling(kind, size)
        for page in pages:
            etl = self.etl(server, kind, page)
            row = report.Measurement(layout, kind, size, page, etl, references[page], ceiling)
            self.rows.append(row)
            print(f"  {row.line()}   {report.mb(etl['db_bytes'])} on disk, {etl['requests']:,} requests", flush=True)

    def slow_server(self, kind: str, layout: str) -> None:
        args = self.args
        held = f"{args.slow_delay_ms:g} ms a request in {args.slow_slots} slots"
        print(f"\nslow server: {args.slow_size:,} records, page {report.SMALL_PAGE}, {held}, rate limit lifted,"
              f" {kind}, concurrency {args.concurrency}")  # fmt: skip
        with ReplayServer(args.slow_size, layout, delay_ms=args.slow_delay_ms, slots=args.slow_slots) as server:
            partitioned = self.etl(server, kind, report.SMALL_PAGE)
            single = self.etl(server, kind, report.SMALL_PAGE, partitions=1)
        shown = str(args.partitions) + (" (= concurrency)" if args.partitions == 0 else "")
        report.print_slow(partitioned, single, shown)


def _with_server_cpu(server: ReplayServer, run: Any) -> dict[str, Any]:
    """Run a measurement and add the server's CPU share over its measured seconds."""
    before = server.cpu_seconds()
    result = run()
    result["server_cpu"] = (server.cpu_seconds() - before) / max(result["seconds"], 1e-9)
    return result


def check_disk(args: argparse.Namespace, databases: Databases, sizes: list[int], kinds: list[str]) -> bool:
    """Say what the run needs on disk and whether it is there; False when it is not."""
    sample = Catalog(THIRDPARTIES, 200, Layout("compact"))
    record_bytes = sum(len(sample.record(i)) for i in range(200)) / 200
    largest = max([*sizes, 0 if args.skip_slow else args.slow_size])
    needed = disk_needed(largest, record_bytes)
    print(f"disk: the largest staging database of this run holds {largest:,} records x {record_bytes:,.0f} B"
          f" x {OVERHEAD} = {report.mb(needed)} (one database at a time, each dropped after use)")  # fmt: skip
    places = {}
    if "sqlite" in kinds:
        places["SQLite files in " + str(databases.folder)] = databases.folder
    if "postgresql" in kinds:
        folder = databases.postgresql_data_directory()
        if folder is None:
            print("  PostgreSQL's data directory is not readable from here: its free space is not checked")
        else:
            places[f"PostgreSQL data directory {folder}"] = folder
    enough = True
    for what, folder in places.items():
        free = free_bytes(folder)
        print(f"  {what}: {report.mb(free)} free")
        if free < needed:
            enough = False
            print(f"  not enough free space for {what}: {report.mb(needed)} needed. Choose smaller --sizes"
                  + (" or --tmp on a larger disk" if folder == databases.folder else ""))  # fmt: skip
    return enough


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated record counts")
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--payloads", default="pretty", help="pretty (Dolibarr's default), compact, or both")
    parser.add_argument("--best-page", type=int, default=1000, help="the page size measured beside 100")
    parser.add_argument("--search-pages", default="", help="e.g. 500,1000,2000: best page picked at the smallest size")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (ETL and reference)")
    parser.add_argument("--partitions", type=int, default=0, help="the ETL's partitions (0: as many as concurrency)")
    for name in TUNING:
        parser.add_argument("--" + name.replace("_", "-"), type=float if name == "commit_ms" else int,
                            help="ETL setting (default: the engine's own)")  # fmt: skip
    parser.add_argument("--slow-size", type=int, default=100_000)
    parser.add_argument("--slow-delay-ms", type=float, default=50.0)
    parser.add_argument("--slow-slots", type=int, default=4)
    parser.add_argument("--skip-slow", action="store_true", help="leave out the slow-server check")
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="where SQLite staging files go")
    args = parser.parse_args(argv)
    for name, allowed in (("db", KINDS), ("payloads", LAYOUTS)):
        for value in getattr(args, name).split(","):
            if value not in allowed:
                parser.error(f"--{name}: {value!r} is not one of {', '.join(allowed)}")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: servers stopped, databases dropped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes, kinds, layouts = sorted(int(s) for s in args.sizes.split(",")), args.db.split(","), args.payloads.split(",")
    signal.signal(signal.SIGTERM, _terminate)
    folder = Path(tempfile.mkdtemp(prefix="bench-extract-", dir=args.tmp))
    databases = Databases(folder, PG_ADMIN)
    started = time.monotonic()
    try:
        if "postgresql" in kinds and (problem := databases.postgresql_problem()):
            print(f"{problem}: set ETL_TEST_POSTGRES_URL, or leave it out with --db sqlite")
            return 2
        if not check_disk(args, databases, sizes, kinds):
            return 2
        print(report.GOALS)
        print(report.HEADER)
        bench = Bench(args, databases)
        try:
            bench.matrix(sizes, kinds, layouts)
        finally:
            if bench.rows:
                report.print_summary(bench.rows)
        if not args.skip_slow:
            bench.slow_server(kinds[0], layouts[0])
    except WorkerFailed as exc:
        print(f"\nstopped: {exc}")
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up")
        return 130
    finally:
        databases.drop_all()
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
        print(f"\n{time.monotonic() - started:.0f} s; temporary files and databases removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
