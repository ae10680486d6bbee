"""The figures as printed: one line per measurement, the summary, and the goals stated beside them.

Goals are printed, never asserted: a benchmark that fails on a slow machine says nothing useful.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GOAL_RATIO_PAGE_100 = 0.6  # ETL / min(reference, ceiling) at page size 100
GOAL_RATIO_BEST_PAGE = 0.8  # the same at the best page size
GOAL_PEAK_RSS_MB = 300.0
GOAL_RSS_GROWTH = 0.10  # peak RSS at the largest size within 10% of the smallest
GOAL_SLOW_SPEEDUP = 3.0  # partitions against one partition, on a slow server
SMALL_PAGE = 100
MB = 2**20

GOALS = (
    f"goals: ratio ETL / min(reference, ceiling) >= {GOAL_RATIO_PAGE_100} at page {SMALL_PAGE} and "
    f">= {GOAL_RATIO_BEST_PAGE} at the best page; ETL peak RSS < {GOAL_PEAK_RSS_MB:.0f} MB; peak RSS at the "
    f"largest size within {GOAL_RSS_GROWTH:.0%} of the smallest"
)
HEADER = (
    f"{'payloads':8} {'db':10} {'records':>9} {'page':>5} {'ETL rec/s':>10} {'ref rec/s':>10} {'ceil rows/s':>11}"
    f" {'ratio':>6} {'goal':>6} {'RSS MB':>7} {'server CPU etl/ref':>19}"
)


@dataclass
class Measurement:
    """One line of the matrix: the ETL beside the reference loop and the database ceiling."""

    payloads: str
    db: str
    size: int
    page: int
    etl: dict[str, Any]
    reference: dict[str, Any]
    ceiling: dict[str, Any]

    @property
    def ratio(self) -> float:
        bound = min(self.reference["rate"], self.ceiling["rate"])
        return self.etl["rate"] / bound if bound else 0.0

    @property
    def ratio_goal(self) -> float:
        return GOAL_RATIO_PAGE_100 if self.page == SMALL_PAGE else GOAL_RATIO_BEST_PAGE

    def line(self) -> str:
        met = "" if self.ratio >= self.ratio_goal else " !"
        cpu = f"{self.etl['server_cpu']:.0%} / {self.reference['server_cpu']:.0%}"
        return (
            f"{self.payloads:8} {self.db:10} {self.size:>9,} {self.page:>5} {self.etl['rate']:>10,.0f}"
            f" {self.reference['rate']:>10,.0f} {self.ceiling['rate']:>11,.0f} {self.ratio:>6.2f}"
            f" {'>=' + str(self.ratio_goal) + met:>6} {self.etl['peak_rss_mb']:>7.0f} {cpu:>19}"
        )


def mb(size: float) -> str:
    return f"{size / MB:,.0f} MB" if size < 10 * 2**30 else f"{size / 2**30:,.1f} GB"


def etl_problem(etl: dict[str, Any], size: int) -> str | None:
    """Why an ETL figure cannot be taken at face value, if it cannot."""
    if etl["status"] != "succeeded":
        return f"the ETL stream {etl['status']}: {etl['error']}"
    if etl["new"] != size:
        return f"the ETL staged {etl['new']:,} new records of {size:,}"
    return None


def print_summary(rows: list[Measurement]) -> None:
    print(f"\nsummary ({GOALS}; '!' marks a ratio under its goal)")
    print(HEADER)
    for row in rows:
        print(row.line())
    over = [row for row in rows if row.etl["peak_rss_mb"] >= GOAL_PEAK_RSS_MB]
    worst = max((row.etl["peak_rss_mb"] for row in rows), default=0.0)
    print(f"ETL peak RSS: largest {worst:.0f} MB (goal < {GOAL_PEAK_RSS_MB:.0f} MB): "
          + (f"{len(over)} run(s) over" if over else "met"))  # fmt: skip
    print_rss_growth(rows)


def print_rss_growth(rows: list[Measurement]) -> None:
    """Peak RSS from the smallest to the largest size, per payload layout, database and page size."""
    groups: dict[tuple[str, str, int], list[Measurement]] = {}
    for row in rows:
        groups.setdefault((row.payloads, row.db, row.page), []).append(row)
    for (payloads, db, page), group in groups.items():
        group.sort(key=lambda row: row.size)
        if len(group) < 2:
            continue
        small, large = group[0], group[-1]
        growth = large.etl["peak_rss_mb"] / small.etl["peak_rss_mb"] - 1
        verdict = "met" if growth <= GOAL_RSS_GROWTH else "missed"
        print(f"RSS growth {payloads} {db} page {page}: {small.size:,} -> {large.size:,} records: "
              f"{small.etl['peak_rss_mb']:.0f} -> {large.etl['peak_rss_mb']:.0f} MB, {growth:+.1%} "
              f"(goal within {GOAL_RSS_GROWTH:.0%}: {verdict})")  # fmt: skip


def print_slow(partitioned: dict[str, Any], single: dict[str, Any], partitions: str) -> None:
    speedup = partitioned["rate"] / single["rate"] if single["rate"] else 0.0
    verdict = "met" if speedup >= GOAL_SLOW_SPEEDUP else "missed"
    print(f"  partitions {partitions:>9}: {partitioned['rate']:>8,.0f} records/s in {partitioned['seconds']:.1f} s"
          f" ({partitioned['requests']:,} requests)")  # fmt: skip
    print(f"  partitions {1:>9}: {single['rate']:>8,.0f} records/s in {single['seconds']:.1f} s"
          f" ({single['requests']:,} requests)")  # fmt: skip
    print(f"  speed-up {speedup:.2f}x (goal >= {GOAL_SLOW_SPEEDUP:.0f}x: {verdict})")
