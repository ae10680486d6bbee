"""Pure classification of Microbizz answers: envelope, command results, form body (no sockets needed)."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

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
from etl.payload import RawJson
from etl.sources.microbizz import SOURCE
from etl.sources.microbizz.config import MicrobizzOptions
from etl.sources.microbizz.envelope import (
    UnrecognisedEnvelopeFailure,
    build_form,
    check_result,
    classify_envelope,
    classify_reason,
    command_error,
    overlapped,
    read_answer,
)
from etl.sources.microbizz.streams import CustomersStream

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


# -- classified by structure: what ends the source, what is only retried ---------------------------
@pytest.mark.parametrize("msg", ["Internal error 0x1F", "Der opstod en fejl", "Unexpected condition", "no reason"])
def test_unrecognised_envelope_failure_is_not_bad_credentials(msg: str) -> None:
    """An envelope refused for a reason in no list is a retryable server failure, capped, naming the msg."""
    answer = raw(200, refused(msg))
    with pytest.raises(UnrecognisedEnvelopeFailure) as caught:
        read_answer(answer, commands=["Echo"])
    verdict = classify_envelope(answer, commands=["Echo"], envelope_attempts=4)
    assert isinstance(caught.value, ServerError) and msg in str(caught.value)
    assert "not taken for bad credentials" in str(caught.value)
    assert (verdict.action, verdict.max_attempts, verdict.error) == ("retry", 4, UnrecognisedEnvelopeFailure)


def test_only_the_configured_credential_words_make_an_envelope_failure_bad_credentials() -> None:
    """The operator's word list decides: a Danish refusal ends the source once its word is listed, and only then."""
    danish = raw(200, refused("Ugyldig bruger"))
    with pytest.raises(UnrecognisedEnvelopeFailure):
        read_answer(danish, commands=["Echo"])
    with pytest.raises(AuthenticationError):
        read_answer(danish, commands=["Echo"], credential_words=("ugyldig",))
    with pytest.raises(UnrecognisedEnvelopeFailure):
        read_answer(raw(200, refused("Invalid API key")), commands=["Echo"], credential_words=())


@given(st.text(max_size=80), st.lists(st.text(min_size=1, max_size=12), max_size=4))
@settings(max_examples=200, deadline=None)
def test_a_command_failure_never_ends_the_source(reason: str, words: list[str]) -> None:
    """Whatever a single command's msg says, inside an accepted envelope it is never bad credentials."""
    assert classify_reason(reason, envelope=False, credential_words=tuple(words)) is not AuthenticationError


@given(st.text(max_size=80))
@settings(max_examples=200, deadline=None)
def test_without_credential_words_no_envelope_failure_is_bad_credentials(reason: str) -> None:
    """Bad credentials come only from the word list: with none configured, no wording ends the source."""
    assert classify_reason(reason, envelope=True, credential_words=()) is not AuthenticationError


# -- watermark overlap and deletion flags (pure) ---------------------------------------------------
@pytest.mark.parametrize(
    ("date", "time", "seconds", "expected"),
    [
        ("2026-03-01", "10:00:00", 3600, ("2026-03-01", "09:00:00")),
        ("2026-03-01", "00:30:15", 3600, ("2026-02-28", "23:30:15")),
        # 02:50 in the first pass of Copenhagen's repeated hour: before both passes of 02:xx.
        ("2026-10-25", "02:50:00", 3600, ("2026-10-25", "01:50:00")),
        ("1970-01-01", "00:00:00", 3600, ("1970-01-01", "00:00:00")),
    ],
)
def test_watermark_overlap_moves_the_local_time_back(date: str, time: str, seconds: int, expected: tuple) -> None:
    """The next scan starts the overlap earlier in the tenant's own wall-clock terms, never before 1970."""
    moved = overlapped({"changedate": date, "changetime": time}, seconds)
    assert (moved["changedate"], moved["changetime"]) == expected


def test_overlap_below_an_hour_is_refused() -> None:
    """watermark_overlap_seconds defaults to 3600 and refuses less (the DST hour and the strict "after")."""
    assert MicrobizzOptions().watermark_overlap_seconds == 3600
    with pytest.raises(ValidationError):
        MicrobizzOptions(watermark_overlap_seconds=3599)


@pytest.mark.parametrize(
    ("record", "deleted"),
    [
        ({"id": 1, "deleted": 1}, True),
        ({"id": 1, "deleted": "1"}, True),
        ({"id": 1, "deleted": True}, True),
        ({"id": 1, "deleted": 0}, False),
        ({"id": 1, "deleted": "0"}, False),
        ({"id": 1}, False),
        ({"id": 1, "closed": 1}, False),
    ],
)
def test_deleted_flag_is_a_tombstone(record: dict[str, object], deleted: bool) -> None:
    """is_deleted reads the deleted flag, decoded or as raw JSON text; closed is not deleted."""
    stream = CustomersStream.__new__(CustomersStream)
    assert stream.is_deleted(record) is deleted
    assert stream.is_deleted(RawJson(json.dumps(record).encode())) is deleted
    assert stream.is_deleted(RawJson(b"[1, 2]")) is False


def test_every_microbizz_stream_asks_for_a_weekly_full_scan() -> None:
    """ByLastChange cannot show hard deletions, so every stream sets full_scan_every to seven days."""
    assert {stream.full_scan_every for stream in SOURCE.streams} == {timedelta(days=7)}
    assert all(stream.incremental for stream in SOURCE.streams)
