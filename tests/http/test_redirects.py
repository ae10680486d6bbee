"""Redirects are never followed off the source's origin: no credential byte reaches another host,
the streams fail naming the Location, and nothing staged is marked deleted."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from etl.db.staging import StagedRecord
from etl.http.errors import OutcomeUnknown, Redirected, ok
from etl.http.response import Request
from etl.http.transport import MAX_REDIRECTS, HttpTransport, shown_location
from jobs.extract import run_extract
from tests.support import shipped_settings, simulators, source_for, staged_content
from tests.support.hostile import Answer, HostileServer, Proxy, Received

KINDS = ["miclinik", "mikrobill", "microbizz", "billmanager"]
# (status, whether the run's first request, the login or connection check, is let through):
# all four statuses, each shape (the credentials call refused, or every stream's list call) twice.
PHASES = [(301, False), (302, True), (307, False), (308, True)]


def redirect_to(target: HostileServer, status: int, *, spare_first: bool, upstream: str) -> Callable:
    """A handler sending every request (or all after the first) to the same path and query on ``target``."""
    seen_first = False

    def answer(seen: Received) -> Answer | Proxy:
        nonlocal seen_first
        if spare_first and not seen_first:
            seen_first = True
            return Proxy(upstream)
        return Answer(status, {"Location": target.url(seen.path_qs)})

    return answer


async def staged_rows(engine) -> set[tuple]:
    """Every staged row, deleted or not, with its hash and deletion mark: what "unchanged" compares."""
    columns = (StagedRecord.source, StagedRecord.entity, StagedRecord.source_id, StagedRecord.content_hash)
    async with engine.connect() as conn:
        return {tuple(row) for row in await conn.execute(select(*columns, StagedRecord.deleted_at))}


@pytest.mark.parametrize("kind", KINDS)
async def test_a_redirect_elsewhere_sends_nothing_there_and_deletes_nothing(kind: str, migrated_url, engine) -> None:
    """A 301/302/307/308 to another origin, of the credentials call or of every list call, fails the streams
    naming the Location, sends not one byte to that origin, and leaves the staged rows as they were."""
    async with simulators([kind], scale=40) as sims, HostileServer() as front, HostileServer() as elsewhere:
        sim = sims[kind]
        front.route("*", "*", Proxy(sim.origin))
        source = source_for(kind, front.url(urlsplit(sim.base_url).path))
        settings = shipped_settings(migrated_url).model_copy(update={"sources": [source]})
        first = await run_extract(settings)
        assert first.status == "succeeded", first.failures()
        staged = await staged_rows(engine)
        assert await staged_content(engine)
        # The recording sees credentials when they are sent, so an empty recording below means something.
        assert any(secret.encode() in front.wire for secret in source.secret_values())
        for status, spare_first in PHASES:
            front.route("*", "*", redirect_to(elsewhere, status, spare_first=spare_first, upstream=sim.origin))
            report = await run_extract(settings)
            assert report.status == "failed", (status, report.failures())
            for result in report.results:
                assert f"HTTP {status} redirect to {elsewhere.base_url}/" in result.error, (status, result.error)
                assert not any(secret in result.error for secret in source.secret_values())
            assert elsewhere.connections == 0 and not elsewhere.wire and not elsewhere.received
            assert await staged_rows(engine) == staged, status


async def test_same_origin_redirects_are_followed_only_when_allowed(migrated_url, engine) -> None:
    """With follow_redirects: same_host a redirect within the origin is followed and the run stages in full;
    under the default it fails naming the Location, and under same_host one to another port or host name
    still fails without a request reaching that origin."""
    async with simulators(["miclinik"], scale=40) as sims, HostileServer() as front, HostileServer() as elsewhere:
        sim = sims["miclinik"]
        front.route("*", "/moved/*", Proxy(sim.origin, strip_prefix="/moved"))

        def moved(origin: str) -> Callable[[Received], Answer]:
            return lambda seen: Answer(301, {"Location": origin + "/moved" + seen.path_qs})

        front.route("*", "/api/*", moved(""))  # a relative Location: same origin
        base = front.url(urlsplit(sim.base_url).path)

        def run(follow: str):
            source = source_for("miclinik", base, follow_redirects=follow)
            return run_extract(shipped_settings(migrated_url).model_copy(update={"sources": [source]}))

        refused = await run("never")
        assert refused.status == "failed"
        assert all(f"HTTP 301 redirect to {front.base_url}/moved/api/index.php/" in r.error for r in refused.results)
        followed = await run("same_host")
        assert followed.status == "succeeded", followed.failures()
        staged = await staged_rows(engine)
        assert await staged_content(engine)
        for other in (elsewhere.base_url, f"http://localhost:{front.port}"):
            front.route("*", "/api/*", moved(other))
            front.forget()
            report = await run("same_host")
            assert report.status == "failed"
            assert all(f"redirect to {other}/moved/" in r.error for r in report.results), report.failures()
            assert not any(seen.path.startswith("/moved") for seen in front.received)
        assert elsewhere.connections == 0 and not elsewhere.wire
        assert await staged_rows(engine) == staged


async def test_followed_redirects_resend_a_body_only_on_307_and_308_and_stop_after_a_few() -> None:
    """Within the origin a 307/308 repeats the POST with its body, a 303 (like 301/302) becomes a bodiless
    GET, and a redirect loop fails after MAX_REDIRECTS hops."""
    async with HostileServer() as server:
        server.route("*", "/target", Answer(200, body={"ok": True}))
        for status in (303, 307, 308):
            server.route("POST", f"/from/{status}", Answer(status, {"Location": "/target"}))
        server.route("*", "/loop", Answer(302, {"Location": "/loop"}))
        source = source_for("miclinik", server.base_url, follow_redirects="same_host")
        async with HttpTransport(source) as transport:
            for status in (303, 307, 308):
                server.forget()
                request = Request("POST", server.url(f"/from/{status}"), data=b"login=x&password=sekret-body")
                assert await transport.call(request, lambda r: ok(r.json()), what="post", safe=True) == {"ok": True}
                hop = server.received[-1]
                resent = status in (307, 308)
                assert (hop.method, hop.body) == (("POST", b"login=x&password=sekret-body") if resent else ("GET", b""))
            server.forget()
            with pytest.raises(Redirected, match=f"more than {MAX_REDIRECTS} redirects"):
                await transport.call(Request("GET", server.url("/loop")), lambda r: ok(), what="loop", safe=True)
            assert len(server.received) == MAX_REDIRECTS + 1


async def test_a_redirect_answering_a_call_not_safe_to_repeat_leaves_its_outcome_unknown() -> None:
    """A 303 (or 301/302) to an unsafe POST may come after the server acted, so it is OutcomeUnknown; a 307
    says the server did not act, so it is the redirect itself; neither reaches the target, and the message
    names the Location without its password or query (which may echo a key)."""
    async with HostileServer() as server, HostileServer() as elsewhere:
        source = source_for("miclinik", server.base_url)
        key = source.secret_values()[0]
        location = f"http://etl:hunter2-pass@127.0.0.1:{elsewhere.port}/create?DOLAPIKEY={key}"
        for status in (303, 307):
            server.route("POST", f"/create/{status}", Answer(status, {"Location": location}))
        async with HttpTransport(source) as transport:
            for status, error in ((303, OutcomeUnknown), (307, Redirected)):
                request = Request("POST", server.url(f"/create/{status}"), json={"ref": "x"})
                with pytest.raises(error) as raised:
                    await transport.call(request, lambda r: ok(), what="POST create", safe=False)
                shown = f"HTTP {status} redirect to http://etl:***@127.0.0.1:{elsewhere.port}/create?... not followed"
                assert shown in str(raised.value) and "hunter2" not in str(raised.value)
                assert key not in str(raised.value)
    assert elsewhere.connections == 0 and len(server.received) == 2


def test_a_location_is_shown_with_secrets_masked_however_encoded() -> None:
    """A Location spelling a secret with percent-escapes (%64emo for demo) is shown decoded and masked."""
    shown = shown_location("http://elsewhere:1/leak/%64emo-cashier-pass?authinfo=x", ["demo-cashier-pass"])
    assert shown == "http://elsewhere:1/leak/***?..."
