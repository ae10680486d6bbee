"""MikroBILL where the vendor's pages disagree or guess (§2.2, §2.3): the client branch's name, properties
the manual does not document, and CRYPTO keys needed only away from the cash desk; simulator over sockets."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from etl.db.staging import StagedRecord
from etl.http.errors import BadRequest
from etl.http.transport import HttpTransport
from etl.simulators.mikrobill import DEMO_CREDENTIALS, MikrobillOptions
from etl.simulators.world import World
from etl.sources.mikrobill import AccountsStream, CustomersStream, MikrobillClient
from etl.sources.mikrobill.config import MikrobillCredentials, SettingsProblem, settings_problems
from etl.sources.mikrobill.config import MikrobillOptions as SourceOptions
from tests.sources.test_mikrobill_extract import extract, keys, mikrobill, settings_for, staged, truth

SMALL = World(seed=3, scale=120)
KEYLESS = {"login": DEMO_CREDENTIALS["login"], "password": DEMO_CREDENTIALS["password"]}
REFUSED = "guessed property refused by this MikroBILL; staged as null"


def of(state: Any, *entities: str) -> set[tuple[str, str]]:
    return {key for key in truth(state) if key[0] in entities}


async def payloads(engine: AsyncEngine, entity: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        query = select(StagedRecord.payload).where(StagedRecord.entity == entity)
        return list((await conn.execute(query)).scalars())


async def test_plural_client_root_reads_a_core_that_serves_only_api_clients(engine: AsyncEngine) -> None:
    """With client_root API.Clients, a core answering only the plural branch stages every client and account."""
    async with mikrobill(SMALL, options=MikrobillOptions(client_branches=("Clients",))) as (state, url):
        settings = settings_for(url, options={"client_root": "API.Clients"})
        await extract(engine, settings, "run-1", streams=[CustomersStream, AccountsStream])
        with pytest.raises(BadRequest, match=r"path not found: API\.Client\.") as refused:
            await extract(engine, settings_for(url, name="singular"), "run-2", streams=[CustomersStream])
        expected = of(state, "customer", "account")
        paths = {entry["what"] for entry in state.request_log if entry.get("what", "").startswith("API.Client")}
    assert keys(await staged(engine, "mb")) == expected and len(expected) > 50
    assert paths == {"API.Clients", "API.Client"} and refused.value is not None


async def test_a_refused_guessed_property_is_null_with_one_warning_per_stream(engine: AsyncEngine) -> None:
    """A core that does not know the [guess] account Tariff stages every account with Tariff null, warned once."""
    options = MikrobillOptions(unknown_properties=("Accounts.Tariff",))
    async with mikrobill(SMALL, options=options) as (state, url):
        with capture_logs() as logs:
            results = await extract(engine, settings_for(url, page_size=10), "run-1", streams=[AccountsStream])
        expected = of(state, "account")
    accounts = await payloads(engine, "account")
    assert keys(await staged(engine, "mb")) == expected and results["accounts"].counts.pages > 3
    assert all(account["Tariff"] is None and account["IP"] for account in accounts)
    warnings = [entry for entry in logs if entry["event"] == REFUSED]
    assert [(w["stream"], w["property"]) for w in warnings] == [("accounts", "Tariff")]


async def test_a_refused_guessed_client_property_added_in_options_is_null(engine: AsyncEngine) -> None:
    """A property added to client_properties that this core lacks is staged null, without failing the page."""
    options = MikrobillOptions(unknown_properties=("BillingInfo.Tariff",))
    async with mikrobill(SMALL, options=options) as (_, url):
        extra = {"client_properties": ["AutorizeInfo.Name", "BillingInfo.Money", "BillingInfo.Tariff"]}
        await extract(engine, settings_for(url, options=extra), "run-1", streams=[CustomersStream])
    customers = await payloads(engine, "customer")
    assert customers and all(c["BillingInfo"]["Tariff"] is None and c["BillingInfo"]["Money"] for c in customers)


@pytest.mark.parametrize(
    ("unknown", "stream"), [("Accounts.MAC", AccountsStream), ("StatusInfo.BlockReason", CustomersStream)]
)
async def test_a_refused_documented_property_still_fails_the_stream(
    engine: AsyncEngine, unknown: str, stream: type
) -> None:
    """A property the manual documents is required: a core refusing it fails the stream, naming the path."""
    async with mikrobill(SMALL, options=MikrobillOptions(unknown_properties=(unknown,))) as (_, url):
        with pytest.raises(BadRequest, match=unknown.rsplit(".", 1)[-1]):
            await extract(engine, settings_for(url), "run-1", streams=[stream])


def test_crypto_keys_are_required_only_for_a_remote_apicore() -> None:
    """Both keys for apicore away from the cash desk, none needed on it, never just one."""
    keyless = MikrobillCredentials(**KEYLESS)
    one = MikrobillCredentials(**KEYLESS, crypto_key_1="k1")
    both = MikrobillCredentials(**DEMO_CREDENTIALS)
    remote, desk = SourceOptions(), SourceOptions(apicore="cash-desk")
    (problem,) = settings_problems(keyless, remote)
    assert "credentials.crypto_key_1 and credentials.crypto_key_2 required" in problem and "apicore" in problem
    assert settings_problems(keyless, desk) == settings_problems(both, remote) == settings_problems(both, desk) == []
    assert "crypto_key_2" in settings_problems(one, remote)[0] and settings_problems(one, desk)


async def test_missing_crypto_keys_for_a_remote_apicore_are_a_settings_error() -> None:
    """Without keys and with apicore remote (the default), the settings are refused naming both keys, and a
    client built around that check anyway (settings made without validation) refuses to open, sending nothing."""
    async with mikrobill(SMALL) as (state, url):
        with pytest.raises(ValueError, match=r"credentials.crypto_key_1 and credentials.crypto_key_2 required"):
            settings_for(url, credentials=KEYLESS)
        valid = settings_for(url, credentials=KEYLESS, options={"apicore": "cash-desk"})
        unchecked = valid.model_copy(update={"options": valid.options.model_copy(update={"apicore": "remote"})})
        async with HttpTransport(unchecked) as transport:
            with pytest.raises(SettingsProblem, match="crypto_key_1") as caught:
                await MikrobillClient(unchecked, transport).open()
        sent = list(state.request_log)
    assert sent == [] and caught.value.kind == "configuration"


@pytest.mark.parametrize("transport", ["http-json", "python:tests.sources.test_mikrobill_extract:UrllibMikrobill"])
async def test_a_cash_desk_apicore_connects_without_crypto_keys(engine: AsyncEngine, transport: str) -> None:
    """apicore on the cash desk's own server: no keys in the settings, none sent, and every client staged."""
    async with mikrobill(SMALL, options=MikrobillOptions(require_crypto_keys=False)) as (state, url):
        settings = settings_for(url, credentials=KEYLESS, options={"apicore": "cash-desk", "transport": transport})
        await extract(engine, settings, "run-1", streams=[CustomersStream])
        expected = of(state, "customer")
    assert keys(await staged(engine, "mb")) == expected
