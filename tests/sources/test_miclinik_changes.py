"""miclinik: changes a tms filter cannot see (a database west of UTC, order lines) are still read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from etl.db.engine import session_factory
from etl.pipeline.checkpoints import load_state, save_state
from etl.simulators.miclinik import MiclinikOptions
from etl.sources.miclinik import SOURCE
from etl.sources.miclinik.streams import OrdersStream
from jobs.extract import run_extract
from tests.support import shipped_settings, simulators, source_for


def _settings(url: str, *sources):
    return shipped_settings(url).model_copy(update={"sources": list(sources)})


def _changed(report, source: str, stream: str) -> int:
    return next(r.counts.changed for r in report.results if r.source == source and r.stream == stream)


async def test_default_overlap_catches_an_edit_on_a_database_west_of_utc(migrated_url) -> None:
    """Against a database at UTC-5, an edit made just before an incremental run is caught with the shipped
    defaults and with the zone named (tms_timezone), and missed by a 5-minute overlap in UTC."""
    options = {"miclinik": MiclinikOptions(db_utc_offset_hours=-5)}
    async with simulators(["miclinik"], scale=60, seed=4, options=options) as sims:
        sim = sims["miclinik"]
        shipped = source_for("miclinik", sim.base_url, name="shipped")
        zoned = source_for("miclinik", sim.base_url, name="zoned", options={"tms_overlap_seconds": 300,
                                                                              "tms_timezone": "Etc/GMT+5"})  # fmt: skip
        short = source_for("miclinik", sim.base_url, name="short", options={"tms_overlap_seconds": 300})
        settings = _settings(migrated_url, shipped, zoned, short)
        first = await run_extract(settings, streams=["products"])
        assert first.status == "succeeded", first.failures()
        product = next(iter(sim.state.store.products))
        sim.state.store.edit_product_label(product, "Relabelled just before the run")
        second = await run_extract(settings, streams=["products"])
    assert second.status == "succeeded", second.failures()
    everything = {r.source: r.counts.records for r in first.results}
    assert all(r.counts.records < everything[r.source] for r in second.results), "not an incremental run"
    assert (_changed(second, "shipped", "products"), _changed(second, "zoned", "products")) == (1, 1)
    assert _changed(second, "short", "products") == 0, "the 5-minute UTC overlap should miss it"


def test_every_stream_is_swept_weekly() -> None:
    """A tms filter never shows a deleted row, and orders also change without their tms (lines, product
    fields): the engine sweeps every miclinik stream in full every 7 days."""
    assert {stream.full_scan_every for stream in SOURCE.streams} == {timedelta(days=7)}
    assert OrdersStream.full_scan_every == timedelta(days=7)


async def test_the_sweep_catches_a_line_edit(engine, migrated_url) -> None:
    """A line description edited in the web UI leaves the order's tms: incremental runs miss it until the
    weekly sweep (last full scan 8 days old) reads the order again and stages the change."""
    async with simulators(["miclinik"], scale=60, seed=8) as sims:
        sim = sims["miclinik"]
        source = source_for("miclinik", sim.base_url)
        settings = _settings(migrated_url, source)
        assert (await run_extract(settings, streams=["orders"])).status == "succeeded"
        order = next(o for o in sim.state.store.orders.all() if o.lines)
        tms = order.tms
        sim.state.store.edit_line_description(order.rowid, order.lines[0].rowid, "Fibre 1000, re-described")
        assert order.tms == tms
        missed = await run_extract(settings, streams=["orders"])
        assert _changed(missed, source.name, "orders") == 0
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            state = await load_state(session, source.name, "orders")
            state.last_full_at = (datetime.now(UTC) - timedelta(days=8)).isoformat()
            await save_state(session, source.name, "orders", state)
        swept = await run_extract(settings, streams=["orders"])
    assert swept.status == "succeeded", swept.failures()
    assert _changed(swept, source.name, "orders") == 1
    assert next(r for r in swept.results if r.stream == "orders").counts.records == len(sim.state.store.orders.all())
