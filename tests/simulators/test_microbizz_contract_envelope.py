"""Contract of the Microbizz simulator: protocols.md §5.3 points 1-3 (endpoint, envelope auth, dispatch), over
real sockets."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from etl.simulators.microbizz import DEMO_CREDENTIALS
from tests.simulators.microbizz_support import (
    FIRST_CUSTOMER,
    Start,
    microbizz_start,  # noqa: F401  (the start fixture)
)


# -- 5.3.1 endpoint ---------------------------------------------------------------
async def test_5_3_1_post_form_field_json_is_answered(start: Start) -> None:
    """An urlencoded POST with form field ``json`` runs the envelope."""
    mbz = await start()
    results = await mbz.run({"command": "Echo", "text": "Hello world"})
    assert results == [{"status": 1, "answer": "Hello world"}]


async def test_5_3_1_multipart_form_field_json_is_answered(start: Start) -> None:
    """A multipart POST with form field ``json`` (curl's array POSTFIELDS) runs the envelope."""
    mbz = await start()
    form = aiohttp.FormData()
    form.add_field("json", json.dumps({**DEMO_CREDENTIALS, "commands": [{"command": "Echo", "text": "æøå"}]}))
    async with mbz.http.post(mbz.url, data=form) as response:
        body = await response.json()
    assert body["status"] == 1 and body["results"][0]["answer"] == "æøå"


async def test_5_3_1_get_query_json_is_answered(start: Start) -> None:
    """GET ``?json=`` with the URL-encoded envelope works like POST."""
    mbz = await start()
    envelope = {**DEMO_CREDENTIALS, "commands": [{"command": "Echo", "text": "via GET"}]}
    async with mbz.http.get(mbz.url, params={"json": json.dumps(envelope)}) as response:
        body = await response.json()
    assert response.status == 200 and body["results"] == [{"status": 1, "answer": "via GET"}]


@pytest.mark.parametrize("form", [{}, {"json": ""}, {"json": "{not json"}, {"json": "[1,2]"}, {"json": '{"a":1}'}])
async def test_5_3_1_missing_or_invalid_json_gives_status_0(start: Start, form: dict[str, str]) -> None:
    """No ``json`` field, broken JSON or a non-envelope answers ``{"status":0,"msg":…}`` with HTTP 200."""
    mbz = await start()
    async with mbz.http.post(mbz.url, data=form) as response:
        body = await response.json()
    assert response.status == 200
    assert body["status"] == 0 and body["msg"] and "results" not in body


# -- 5.3.2 envelope auth ----------------------------------------------------------
async def test_5_3_2_apikey_username_password_or_accesstoken_authenticate(start: Start) -> None:
    """Contract + apikey + username + password works, and so does contract + an app-connect accesstoken."""
    mbz = await start(access_tokens=("tok-123",))
    assert (await mbz.run({"command": "Echo", "text": "a"}))[0]["status"] == 1
    envelope = {"contract": "2391", "accesstoken": "tok-123", "commands": [{"command": "Echo", "text": "b"}]}
    async with mbz.http.post(mbz.url, data={"json": json.dumps(envelope)}) as response:
        body = await response.json()
    assert body["status"] == 1 and body["results"][0]["answer"] == "b"


@pytest.mark.parametrize(
    "override",
    [{"contract": 9999}, {"apikey": "wrong"}, {"username": "nobody"}, {"password": "wrong"}, {"accesstoken": "bad"}],
)
async def test_5_3_2_wrong_credentials_status_0_without_results_http_200(
    start: Start, override: dict[str, Any]
) -> None:
    """Any wrong identifying value answers status 0 with a reason and no results, over HTTP 200."""
    mbz = await start()
    status, body = await mbz.send([{"command": "Echo", "text": "x"}], **override)
    assert status == 200 and body["status"] == 0 and body["msg"]
    assert "results" not in body


async def test_5_3_2_success_carries_receipt_date_and_time(start: Start) -> None:
    """The envelope's date/time is the receipt moment in Copenhagen time: 10:00 UTC is 11:00 in March."""
    mbz = await start()
    _, body = await mbz.send([{"command": "Echo", "text": "t"}])
    assert (body["date"], body["time"]) == ("2026-03-01", "11:00:00")
    mbz.clock.advance(hours=3, seconds=5)
    _, body = await mbz.send([{"command": "Echo", "text": "t"}])
    assert (body["date"], body["time"]) == ("2026-03-01", "14:00:05")


# -- 5.3.3 dispatch ---------------------------------------------------------------
async def test_5_3_3_one_result_per_command_in_order(start: Start) -> None:
    """Three commands give three results in the order sent."""
    mbz = await start()
    results = await mbz.run(*({"command": "Echo", "text": str(n)} for n in range(3)))
    assert [r["answer"] for r in results] == ["0", "1", "2"]


async def test_5_3_3_result_is_status_1_with_outputs_or_status_0_with_msg(start: Start) -> None:
    """Outputs sit beside ``status``:1 in a result; a failing command gives status 0 and a msg."""
    mbz = await start()
    ok, failed = await mbz.run(
        {"command": "GetCustomerByID", "customerid": FIRST_CUSTOMER}, {"command": "GetCustomerByID"}
    )
    assert ok["status"] == 1 and ok["customers"][0]["id"] == FIRST_CUSTOMER
    assert failed["status"] == 0 and failed["msg"] and "customers" not in failed


async def test_5_3_3_unknown_command_status_0(start: Start) -> None:
    """An unknown command name fails that command only."""
    mbz = await start()
    unknown, echo = await mbz.run({"command": "DoesNotExist"}, {"command": "Echo", "text": "still"})
    assert unknown["status"] == 0 and "DoesNotExist" in unknown["msg"]
    assert echo == {"status": 1, "answer": "still"}


async def test_5_3_3_haltonerror_0_runs_every_command(start: Start) -> None:
    """By default a failure does not stop the commands after it."""
    mbz = await start()
    commands = [{"command": "Echo", "text": "1"}, {"command": "Nope"}, {"command": "Echo", "text": "3"}]
    results = await mbz.run(*commands)
    assert [r["status"] for r in results] == [1, 0, 1]


async def test_5_3_3_haltonerror_1_stops_and_omits_later_results(start: Start) -> None:
    """With haltonerror=1 nothing runs after the first failure and later results are left out."""
    mbz = await start()
    create = {"command": "CreateUpdateCustomerByID", "customer": {"id": 0, "name": "Never made"}}
    results = await mbz.run({"command": "Echo", "text": "1"}, {"command": "Nope"}, create, haltonerror=1)
    assert [r["status"] for r in results] == [1, 0]
    assert mbz.state.tables["customer"].created == []


async def test_5_3_3_haltonerror_1_can_emit_skipped_as_status_0(start: Start) -> None:
    """The switch ``halt_emits_skipped`` answers the commands after the failure with status 0."""
    mbz = await start(halt_emits_skipped=True)
    results = await mbz.run({"command": "Nope"}, {"command": "Echo", "text": "2"}, haltonerror="yes")
    assert [r["status"] for r in results] == [0, 0]
    assert "answer" not in results[1]
