"""miclinik extraction against the Dolibarr simulator: faults, incremental runs, bad records, bad keys."""

from __future__ import annotations

import io
import json

import structlog
from aiohttp import web
from sqlalchemy import select

from etl.db import migrate
from etl.db.engine import create_engine
from etl.db.staging import RejectedRecord, SyncRun
from etl.logging import configure_logging
from etl.simulators.miclinik import MiclinikOptions
from jobs.extract import run_extract
from tests.support import shipped_settings, simulators, source_for, staged_content, staged_keys, truth_keys

ENTITIES = {"customer", "product", "order", "user"}


def _settings(url: str, *sources):
    return shipped_settings(url).model_copy(update={"sources": list(sources)})


async def _content_of_clean_run(tmp_path, scale: int, seed: int, **options) -> set:
    url = f"sqlite+aiosqlite:///{tmp_path / 'clean.db'}"
    migrate.upgrade(url)
    async with simulators(["miclinik"], scale=scale, seed=seed, **options) as sims:
        report = await run_extract(_settings(url, source_for("miclinik", sims["miclinik"].base_url)))
        assert report.status == "succeeded"
    engine = create_engine(url)
    try:
        return await staged_content(engine)
    finally:
        await engine.dispose()


async def test_flaky_faults_give_identical_staging(tmp_path, engine, migrated_url) -> None:
    """Under the flaky profile (5xx pages, 429, resets, truncation, 401 bursts) staging equals a clean run."""
    clean = await _content_of_clean_run(tmp_path, scale=1200, seed=5)
    async with simulators(["miclinik"], scale=1200, seed=5, faults="flaky") as sims:
        report = await run_extract(
            _settings(migrated_url, source_for("miclinik", sims["miclinik"].base_url, page_size=40))
        )
        assert report.status == "succeeded", report.failures()
        assert sum(sims["miclinik"].plan.fired.values()) > 0, "no fault fired: the test proves nothing"
        assert report.retries["miclinik"] > 0
    assert await staged_content(engine) == clean


async def test_hostile_faults_identical_or_failures_named(tmp_path, engine, migrated_url) -> None:
    """Under the hostile profile the run either stages exactly the clean content or names each failed stream."""
    clean = await _content_of_clean_run(tmp_path, scale=600, seed=9)
    async with simulators(["miclinik"], scale=600, seed=9, faults="hostile") as sims:
        source = source_for("miclinik", sims["miclinik"].base_url, page_size=40, max_attempts=20)
        report = await run_extract(_settings(migrated_url, source))
    if report.status == "succeeded":
        assert await staged_content(engine) == clean
    else:
        for failure in report.failures():
            assert failure.startswith("miclinik.") and ": " in failure


async def test_one_percent_changed_reads_only_changes(engine, migrated_url) -> None:
    """After 1% of records change, the incremental run reads only those (plus the overlap) and updates exactly them."""
    async with simulators(["miclinik"], scale=3000, seed=3) as sims:
        settings = _settings(migrated_url, source_for("miclinik", sims["miclinik"].base_url))
        assert (await run_extract(settings)).status == "succeeded"
        before = await staged_content(engine)
        changed = sims["miclinik"].state.mutate(0.01, seed=1)
        assert changed > 0
        second = await run_extract(settings)
        counts = {r.stream: r.counts for r in second.results}
        assert sum(c.changed for c in counts.values()) == changed
        assert sum(c.new for c in counts.values()) == 0
        assert sum(c.records for c in counts.values()) <= changed + 10  # overlap: the few users touched at start
        after = await staged_content(engine)
        assert len(after - before) == changed


async def test_old_profile_extracts_the_same_records(engine, migrated_url) -> None:
    """An OLD (Dolibarr <= 18) server, with 404 on empty lists and no ':' in filters, yields the same records."""
    options = {"miclinik": MiclinikOptions(profile="OLD")}
    async with simulators(["miclinik"], scale=400, seed=4, options=options) as sims:
        source = source_for("miclinik", sims["miclinik"].base_url, page_size=30, options={"profile": "old"})
        settings = _settings(migrated_url, source)
        assert (await run_extract(settings)).status == "succeeded"
        assert await staged_keys(engine, "miclinik") == truth_keys(sims["miclinik"].state, ENTITIES)
        sims["miclinik"].state.mutate(0.02, seed=2)
        second = await run_extract(settings)
        assert second.status == "succeeded", second.failures()
        assert sum(r.counts.changed for r in second.results) > 0


async def test_bad_records_are_rejected_and_the_rest_staged(engine, migrated_url, unused_tcp_port) -> None:
    """A record without id, one with an object id and one with unstorable text are rejected with reasons."""
    page = [{"id": "1", "name": "ok"}, {"name": "no id"}, {"id": {"x": 1}}, {"id": "4", "name": "bad \ud800 text"},
            {"id": "5", "name": "also ok"}]  # fmt: skip

    async def handler(request: web.Request) -> web.Response:
        if request.match_info["resource"] == "status":
            return web.json_response({"success": {"code": 200, "timestamp_now_utc": 1795418624}})
        if request.match_info["resource"] == "thirdparties" and "(t.rowid:>:0)" in request.query["sqlfilters"]:
            return web.Response(text=json.dumps(page), content_type="application/json")
        # The ask after the short page's last id: nothing there, as Dolibarr says it.
        return web.json_response({"error": {"code": 404, "message": "Not Found: No third parties found"}}, status=404)

    app = web.Application()
    app.router.add_get("/api/index.php/{resource}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        source = source_for("miclinik", f"http://127.0.0.1:{unused_tcp_port}/api/index.php")
        report = await run_extract(_settings(migrated_url, source), streams=["thirdparties"])
    finally:
        await runner.cleanup()
    assert report.status == "succeeded"
    assert await staged_keys(engine, "miclinik") == {("customer", "1"), ("customer", "5")}
    async with engine.connect() as conn:
        reasons = sorted(r[0] for r in await conn.execute(select(RejectedRecord.reason)))
    assert len(reasons) == 3
    assert any("missing id" in r for r in reasons) and any("undecodable" in r for r in reasons)


async def test_revoked_key_fails_that_source_only_and_never_leaks(engine, migrated_url) -> None:
    """A wrong key ends its source with a clear message; a second source of the same kind still runs."""
    secret = "wrong-key-7d1f0c2b9a"
    out = io.StringIO()
    configure_logging(fmt="json", secrets=[secret], stream=out)
    options = {"miclinik": MiclinikOptions(bad_key_delay=0.01)}
    async with simulators(["miclinik"], scale=100, seed=1, options=options) as sims:
        url = sims["miclinik"].base_url
        bad = source_for("miclinik", url, name="erp_old", credentials={"api_key": secret})
        good = source_for("miclinik", url, name="erp_main")
        report = await run_extract(_settings(migrated_url, bad, good))
    structlog.reset_defaults()
    assert report.status == "partial"
    failures = report.failures()
    assert failures and all(f.startswith("erp_old.") for f in failures)
    assert "authentication" in failures[0] and "401" in failures[0]
    assert await staged_keys(engine, "erp_main")
    async with engine.connect() as conn:
        error = (await conn.execute(select(SyncRun.error))).scalar_one()
    assert secret not in (error or "") and secret not in out.getvalue() and secret not in " ".join(failures)


async def test_login_and_password_obtain_a_token_that_is_used(migrated_url, engine) -> None:
    """With login+password instead of a key, one POST /login gets the token and every later call carries it."""
    async with simulators(["miclinik"], scale=60) as sims:
        sim = sims["miclinik"]
        credentials = {"login": "admin", "password": sim.credentials["password"]}
        source = source_for("miclinik", sim.base_url, credentials=credentials)
        report = await run_extract(_settings(migrated_url, source))
        assert report.status == "succeeded", report.failures()
        assert await staged_keys(engine, source.name) == truth_keys(sim.state, ENTITIES)
        logins = [e for e in sim.state.request_log if e["path"].endswith("/login")]
        assert [e["method"] for e in logins] == ["POST"] and logins[0]["query"] == {}
        wrong = source_for("miclinik", sim.base_url, name="wrong", credentials={**credentials, "password": "nope-nope"})
        refused = await run_extract(_settings(migrated_url, wrong))
    assert refused.status == "failed"
    assert all(r.error and r.error.startswith("authentication: POST login: HTTP 403") for r in refused.results)
    assert all("nope-nope" not in (r.error or "") for r in refused.results)


async def test_an_old_servers_401_for_a_missing_right_ends_only_that_stream(migrated_url, engine) -> None:
    """OLD Dolibarr answers a missing right with 401 (not 403): the users stream fails at once, naming the
    right, and the key is not taken for revoked (the other streams stage everything)."""
    options = {"miclinik": MiclinikOptions(profile="OLD", bad_key_delay=0.01)}
    async with simulators(["miclinik"], scale=60, options=options) as sims:
        sim = sims["miclinik"]
        readonly = {"api_key": "demo-dolibarr-readonly-key"}
        source = source_for("miclinik", sim.base_url, credentials=readonly, options={"profile": "old"})
        report = await run_extract(_settings(migrated_url, source))
        users_calls = [e for e in sim.state.request_log if e["path"].endswith("/users")]
    failed = {r.stream: r.error for r in report.results if r.failed}
    assert list(failed) == ["users"] and "permission" in failed["users"] and "HTTP 401" in failed["users"]
    assert "You are not allowed to read list of users" in failed["users"]
    assert len(users_calls) == 1, "a refused right is not confirmed like a refused key"
    assert await staged_keys(engine, source.name) == truth_keys(sim.state, ENTITIES - {"user"})
