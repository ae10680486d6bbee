"""Contract of the MikroBILL simulator's installation variants (protocols.md §2.2, §2.3 end, §5.2): the client
branch's name, properties an installation lacks, CRYPTO keys only away from the cash desk; real sockets."""

from __future__ import annotations

from etl.simulators.mikrobill import DEMO_CREDENTIALS, Code, MikrobillOptions
from tests.simulators.mikrobill_support import (
    A1,
    C1,
    Start,
    mikrobill_start,  # noqa: F401  (the start fixture)
)

KEYLESS = {"login": DEMO_CREDENTIALS["login"], "password": DEMO_CREDENTIALS["password"]}


async def test_plural_only_core_answers_api_clients_and_refuses_api_client(start: Start) -> None:
    """client_branches=("Clients",) serves API.Clients.<id>... and answers API.Client.<id>... path not found."""
    mb = await start(options=MikrobillOptions(client_branches=("Clients",)))
    name = await mb.value(f"API.Clients.{C1}.AutorizeInfo.Name")
    singular = await mb.process(f"API.Client.{C1}.AutorizeInfo.Name")
    batch = await mb.process("API.Clients", [f"{C1}.BillingInfo.Money"])
    assert isinstance(name, str) and name
    assert singular["code"] == Code.PATH_NOT_FOUND
    assert [item["code"] for item in batch] == [0]


async def test_both_branches_answer_the_same_client(start: Start) -> None:
    """With both names served, the singular and the plural branch read the same value."""
    mb = await start(options=MikrobillOptions(client_branches=("Client", "Clients")))
    path = f"{C1}.AutorizeInfo.Name"
    assert await mb.value(f"API.Client.{path}") == await mb.value(f"API.Clients.{path}")


async def test_unknown_properties_are_path_not_found_inside_a_batch_only_for_their_item(start: Start) -> None:
    """A property the installation lacks fails only its own batch item, with path not found."""
    options = MikrobillOptions(unknown_properties=("Accounts.Tariff", "BillingInfo.Tariff", "Tariff.Type"))
    mb = await start(options=options)
    account = f"{C1}.AutorizeInfo.Accounts.{A1}"
    answer = await mb.process("API.Client", [f"{account}.IP", f"{account}.Tariff", f"{C1}.BillingInfo.Tariff"])
    tariff = (await mb.value("API.GetTariffs"))[0]
    catalogue = await mb.process("API.Tariff", [f"{tariff}.Name", f"{tariff}.Type"])
    assert [item["code"] for item in answer] == [0, Code.PATH_NOT_FOUND, Code.PATH_NOT_FOUND]
    assert [item["code"] for item in catalogue] == [0, Code.PATH_NOT_FOUND]


async def test_crypto_keys_are_required_unless_apicore_is_on_the_cash_desk(start: Start) -> None:
    """Without keys a default core refuses the connect; one standing for apicore on the cash desk accepts it."""
    remote = await start(connect=False)
    _, refused = await remote.post("/connect", KEYLESS)
    desk = await start(connect=False, options=MikrobillOptions(require_crypto_keys=False))
    _, accepted = await desk.post("/connect", KEYLESS | {"crypto_key_1": None, "crypto_key_2": None})
    _, wrong = await desk.post("/connect", KEYLESS | {"crypto_key_1": "old", "crypto_key_2": "older"})
    assert refused["code"] != 0 and accepted["code"] == 0
    assert wrong["code"] == Code.CRYPTO_MISMATCH
