"""Pure classification of Microbizz answers: envelope, command results, form body (no sockets needed)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from etl.http.errors import (
    AuthenticationError,
    BadRequest,
    PermissionDenied,
    ProtocolError,
    ProxyPageError,
    RateLimited,
    ServerError,
    SourceBusy,
    SourceError,
)
from etl.http.response import RawResponse
from etl.sources.microbizz.envelope import build_form, check_result, command_error, read_answer

JSON = {"Content-Type": "application/json"}
HTML = {"Content-Type": "text/html"}
SECRET = "demo-microbizz-key"


def raw(status: int, body: object, headers: dict[str, str] | None = None) -> RawResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RawResponse(status, headers or JSON, data)


def refused(msg: str) -> dict[str, object]:
    return {"status": 0, "msg": msg}


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (raw(200, b"<html><h1>502 Bad Gateway</h1></html>", HTML), ProxyPageError),
        (raw(200, b'{"status":1,"results":[{"sta', JSON), ProxyPageError),
        (raw(502, b"<html>Bad Gateway</html>", HTML), ServerError),
        (raw(503, refused("Server busy, please try again later")), ServerError),
        (raw(429, b"<html>Too Many Requests</html>", HTML | {"Retry-After": "3"}), RateLimited),
        (raw(401, refused("Invalid API key")), AuthenticationError),
        (raw(403, refused("Access denied")), PermissionDenied),
        (raw(200, refused("Invalid username or password")), AuthenticationError),
        (raw(200, refused("Invalid API key")), AuthenticationError),
        (raw(200, refused("Unknown contract")), AuthenticationError),
        (raw(200, refused("Invalid access token")), AuthenticationError),
        (raw(200, refused("Kontrakten er lukket")), AuthenticationError),
        (raw(200, refused("Server busy, please try again later")), SourceBusy),
        (raw(200, refused("Systemet er optaget, prøv igen")), SourceBusy),
        (raw(200, refused("No json parameter given")), BadRequest),
        (raw(200, refused("You do not have permission to use the API")), PermissionDenied),
        (raw(200, [1, 2]), ProtocolError),
        (raw(200, {"status": 1, "msg": "OK", "results": []}), ProtocolError),
        (raw(200, {"status": 1, "msg": "OK", "results": ["x"]}), ProtocolError),
    ],
)
def test_envelope_answers_are_classified(response: RawResponse, error: type[SourceError]) -> None:
    """Each failure shape maps to one error class: HTTP status first, then JSON, then the envelope's msg."""
    with pytest.raises(SourceError) as caught:
        read_answer(response, commands=["Echo"], secrets=[SECRET])
    assert type(caught.value) is error


def test_retry_after_is_kept_from_a_429() -> None:
    """A proxy's Retry-After reaches the transport's wait."""
    with pytest.raises(RateLimited) as caught:
        read_answer(raw(429, b"<html/>", HTML | {"Retry-After": "3"}), commands=["Echo"])
    assert caught.value.retry_after == 3.0


def test_a_successful_envelope_gives_results_and_the_receipt_watermark() -> None:
    """status 1 gives one result per command and the envelope's date/time as the next watermark."""
    body = {"status": 1, "msg": "OK", "results": [{"status": 1, "answer": "hi"}, refused("Unknown command X")]}
    body |= {"date": "2025-03-01", "time": "09:25:47", "syncrevision": 3}
    answer = read_answer(raw(200, body), commands=["Echo", "X"])
    assert answer.results[0]["answer"] == "hi"
    assert answer.watermark == {"changedate": "2025-03-01", "changetime": "09:25:47"}
    assert isinstance(command_error(answer.results[1], "X"), BadRequest)


def test_an_answer_without_date_cannot_be_a_watermark() -> None:
    """A success without a usable date/time is a protocol error when a watermark is needed."""
    answer = read_answer(raw(200, {"status": 1, "results": [{"status": 1}]}), commands=["Echo"])
    with pytest.raises(ProtocolError):
        _ = answer.watermark


@pytest.mark.parametrize(
    ("result", "error"),
    [
        ({"status": 1, "customers": []}, None),
        ({"status": "1", "customers": []}, None),
        (refused("Service temporarily unavailable, please try again"), SourceBusy),
        (refused("Unknown command GetEmployeesByLastChange"), BadRequest),
        (refused("invalid resumekey"), BadRequest),
        (refused("changedate is not a date: 'x'"), BadRequest),
        (refused("Permission denied: products"), PermissionDenied),
        ({"status": 0}, BadRequest),
    ],
)
def test_command_results_are_classified(result: dict[str, object], error: type[SourceError] | None) -> None:
    """A command's status 0 is retryable only when its msg says busy/temporarily; otherwise fatal."""
    found = command_error(result, "GetCustomersByLastChange")
    assert (type(found) if found else None) is error
    if error is None:
        assert check_result(result, "GetCustomersByLastChange") is result


def test_secrets_echoed_by_the_server_are_masked() -> None:
    """A server reason that repeats the API key or password never carries it into the error message."""
    with pytest.raises(AuthenticationError) as caught:
        read_answer(raw(200, refused(f"Invalid API key {SECRET}")), commands=["Echo"], secrets=[SECRET])
    assert SECRET not in str(caught.value) and "Invalid API key ***" in str(caught.value)
    found = command_error(refused("bad password hunter22 for user"), "Echo", ["hunter22"])
    assert found is not None and "hunter22" not in str(found)


def test_the_form_body_is_one_urlencoded_json_envelope() -> None:
    """The POST body is form field ``json`` holding identity, remoteagent, haltonerror 0 and the commands."""
    identity = {"contract": 2391, "apikey": SECRET, "username": "etl", "password": "pw"}
    commands = [
        {"command": "Echo", "text": "Kære Åse"},
        {"command": "GetUsersByLastChange", "changedate": "1970-01-01"},
    ]
    body = build_form(identity, commands, "billing-etl")
    fields = parse_qs(body.decode("ascii"), strict_parsing=True)
    assert list(fields) == ["json"]
    envelope = json.loads(fields["json"][0])
    assert envelope == identity | {"remoteagent": "billing-etl", "haltonerror": 0, "commands": commands}


def test_a_command_refused_in_credential_words_is_a_permission_error_not_bad_credentials() -> None:
    """Inside an accepted envelope, one command refused as "invalid access token" ends its stream, not the source."""
    result = {"status": 0, "msg": "Invalid access token for this module"}
    assert isinstance(command_error(result, "GetTodosByLastChange"), PermissionDenied)
