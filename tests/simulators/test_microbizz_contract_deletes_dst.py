"""Microbizz simulator: deletions, the tenant's local time on a DST night, and expiring resumekeys (§3.5, §5.3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.simulators.microbizz_support import (
    FIRST_CUSTOMER,
    MEMBERS,
    SYNC_START,
    Microbizz,
    Start,
    microbizz_start,  # noqa: F401  (the start fixture)
)

# 2026-10-25 is the autumn DST night in Copenhagen: 02:00-03:00 local happens twice.
FIRST_PASS = datetime(2026, 10, 25, 0, 50, tzinfo=UTC)  # 02:50 CEST
SECOND_PASS = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET, a real 20 minutes later


async def edit_customer(mbz: Microbizz, name: str) -> dict[str, Any]:
    made = await mbz.ok("CreateUpdateCustomerByID", customer={"id": FIRST_CUSTOMER, "name": name})
    return made["customer"]


@pytest.mark.parametrize("wallclock", [True, False])
async def test_a_change_in_the_repeated_dst_hour_reads_as_earlier_on_the_wall_clock(
    start: Start, wallclock: bool
) -> None:
    """With local wall-clock comparison, a change in the second pass of 02:xx is not "after" a first-pass watermark."""
    mbz = await start(timezone="Europe/Copenhagen", wallclock_filter=wallclock)
    mbz.clock.moment = FIRST_PASS
    _, _, first = await mbz.sync("GetCustomersByLastChange", "customers")
    mbz.clock.moment = SECOND_PASS
    edited = await edit_customer(mbz, "Changed in the repeated hour")
    again, _, _ = await mbz.sync(
        "GetCustomersByLastChange", "customers", changedate=first["date"], changetime=first["time"]
    )
    assert (first["date"], first["time"]) == ("2026-10-25", "02:50:00")
    assert (edited["changedate"], edited["changetime"]) == ("2026-10-25", "02:10:00")
    assert (FIRST_CUSTOMER in {c["id"] for c in again}) is not wallclock


async def test_a_change_in_the_watermark_second_is_not_after_it(start: Start) -> None:
    """A record changed in the same second as the envelope's receipt time is not served for that changetime."""
    mbz = await start(timezone="Europe/Copenhagen")
    _, _, first = await mbz.sync("GetCustomersByLastChange", "customers")
    mbz.clock.advance(microseconds=300_000)
    await edit_customer(mbz, "Same second")
    same, _, _ = await mbz.sync(
        "GetCustomersByLastChange", "customers", changedate=first["date"], changetime=first["time"]
    )
    assert same == []


async def test_hard_deleted_record_is_invisible_to_by_last_change(start: Start) -> None:
    """A record removed entirely is in no change feed, no get-by-id and not in truth()."""
    mbz = await start(chunk_size=50)
    _, _, first = await mbz.sync("GetCustomersByLastChange", "customers")
    mbz.clock.advance(seconds=5)
    mbz.state.hard_delete("customer", FIRST_CUSTOMER)
    since_then, _, _ = await mbz.sync(
        "GetCustomersByLastChange", "customers", changedate=first["date"], changetime=first["time"]
    )
    everything, _, _ = await mbz.sync("GetCustomersByLastChange", "customers")
    by_id = await mbz.ok("GetCustomerByID", customerid=FIRST_CUSTOMER)
    assert since_then == [] and by_id["customers"] == []
    assert FIRST_CUSTOMER not in {c["id"] for c in everything} and len(everything) == len(MEMBERS) - 1
    assert str(FIRST_CUSTOMER) not in {row.source_id for row in mbz.state.truth() if row.entity == "customer"}


@pytest.mark.parametrize(
    ("table", "command", "output"),
    [
        ("customer", "GetCustomersByLastChange", "customers"),
        ("user", "GetUsersByLastChange", "users"),
        ("invoiceline", "GetInvoiceLinesByLastChange", "invoicelines"),
    ],
)
async def test_soft_deleted_record_is_served_with_deleted_1(
    start: Start, table: str, command: str, output: str
) -> None:
    """A record deleted in the UI comes back from the change feed with ``deleted: 1``."""
    mbz = await start()
    everything, _, first = await mbz.sync(command, output)
    victim = next(row["id"] for row in everything if row["deleted"] == 0)
    mbz.clock.advance(seconds=5)
    mbz.state.soft_delete(table, victim)
    since_then, _, _ = await mbz.sync(command, output, changedate=first["date"], changetime=first["time"])
    assert [(row["id"], row["deleted"]) for row in since_then] == [(victim, 1)]


@pytest.mark.parametrize("wording", ["Session data expired, please start over", "Ugyldig nøgle"])
async def test_resumekey_expires_with_the_configured_wording(start: Start, wording: str) -> None:
    """A resumekey older than its lifetime fails at command level with the configured msg; a younger one works."""
    mbz = await start(chunk_size=20, resumekey_lifetime_seconds=60, resumekey_expired_msg=wording)
    key = (await mbz.ok("GetCustomersByLastChange", **SYNC_START))["resumekey"]
    mbz.clock.advance(seconds=59)
    young = await mbz.one("GetCustomersByLastChange", **SYNC_START, resumekey=key)
    mbz.clock.advance(seconds=2)
    old = await mbz.one("GetCustomersByLastChange", **SYNC_START, resumekey=key)
    assert young["status"] == 1 and len(young["customers"]) == 20
    assert old == {"status": 0, "msg": wording}
