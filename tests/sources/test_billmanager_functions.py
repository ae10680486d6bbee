"""BILLmanager installations that differ: function names, missing modules, authtype refusals, staff logins."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from etl.http.transport import HttpTransport
from etl.pipeline.extract import extract_source, extract_stream
from etl.simulators.billmanager import BillmanagerOptions
from etl.sources.billmanager import SOURCE
from etl.sources.billmanager.client import BillmanagerClient
from etl.sources.billmanager.config import BillmanagerOptions as ConnectorOptions
from etl.sources.billmanager.streams import PaymentsStream, StaffUsersStream, UsersStream
from tests.support import simulators, source_for, staged_keys, truth_keys


async def test_missed_function_fails_that_stream_alone(engine) -> None:
    """A module the installation lacks (missed, Russian text) fails its stream, naming the function and the option; the rest run."""
    options = {"billmanager": BillmanagerOptions(missing_funcs=frozenset({"vds"}))}
    async with simulators(["billmanager"], scale=50, options=options) as sims:
        source = source_for("billmanager", sims["billmanager"].base_url, page_size=50)
        result = await extract_source(engine, source, run_id="run-1")
    status = {stream.stream: stream for stream in result.streams}
    assert result.error is None and status["vds"].status == "failed"
    error = status["vds"].error or ""
    assert "func=vds" in error and "options.functions.vds" in error and "Не удалось найти функцию 'vds'" in error
    assert all(s.status == "succeeded" for name, s in status.items() if name != "vds")


async def test_a_renamed_function_is_configured_not_patched(engine) -> None:
    """Services served as ``vds.vps`` only: options.functions.vds names it and the stream stages every server."""
    options = {"billmanager": BillmanagerOptions(func_names={"vds": "vds.vps"})}
    async with simulators(["billmanager"], scale=50, options=options) as sims:
        sim = sims["billmanager"]
        functions = {"functions": {"vds": "vds.vps"}}
        source = source_for("billmanager", sim.base_url, page_size=50, options=functions)
        result = await extract_source(engine, source, run_id="run-1", streams=["vds"])
        assert [s.status for s in result.streams] == ["succeeded"]
        assert await staged_keys(engine, source.name) == truth_keys(sim.state, {"account"})
        assert {e["func"] for e in sim.state.request_log} == {"auth", "vds.vps"}


async def test_an_authtype_error_renews_the_session() -> None:
    """``$type: "authtype"`` on a session call is a dead session: one new login, the call repeated, nothing lost."""
    options = {"billmanager": BillmanagerOptions(authtype_on_calls=frozenset({3}))}
    async with simulators(["billmanager"], scale=50, options=options) as sims:
        sim = sims["billmanager"]
        source = source_for("billmanager", sim.base_url, page_size=10)
        async with HttpTransport(source) as transport:
            client = BillmanagerClient(source, transport)
            await client.open()
            stream = PaymentsStream(client, source)
            cursor, seen = stream.start(None), []
            while cursor is not None:
                page = await stream.fetch(cursor)
                seen += [record["id"]["$"] for record in page.records]
                cursor = page.next_cursor
        assert seen == [str(row_id) for row_id in sim.state.store.payments.ids()]
        assert client.logins == 2
        assert [e["result"] for e in sim.state.request_log[:4]] == ["ok", "ok", "error:authtype", "ok"]


async def test_staff_logins_are_staged_as_staff_users_and_both_streams_count_every_row(engine) -> None:
    """func=user rows without account_id go to staff_users, the rest to users; each page reports every row answered."""
    async with simulators(["billmanager"], scale=50) as sims:
        sim = sims["billmanager"]
        source = source_for("billmanager", sim.base_url, page_size=7)
        async with HttpTransport(source) as transport:
            client = BillmanagerClient(source, transport)
            await client.open()
            for stream_class in (UsersStream, StaffUsersStream):
                stream = stream_class(client, source)
                first = await stream.fetch(stream.start(None))
                assert first.received == 7 and first.evidence.total == len(sim.state.store.users)
                await extract_stream(engine, stream, source=source.name, run_id="run-1")
    staged = await staged_keys(engine, source.name)
    assert {key for key in staged if key[0] == "staff_user"} == {("staff_user", "1")}
    assert staged == truth_keys(sim.state, {"user", "staff_user"})
    assert "staff_users" in SOURCE.stream_names()


def test_the_removed_stage_staff_logins_option_says_what_replaced_it() -> None:
    """An old settings file with stage_staff_logins stops at start, pointing at the staff_users stream."""
    with pytest.raises(ValidationError, match="staff_users stream"):
        ConnectorOptions.model_validate({"stage_staff_logins": True})
    with pytest.raises(ValidationError, match="instances_list"):
        ConnectorOptions.model_validate({"functions": {"instances_list": "instances"}})
