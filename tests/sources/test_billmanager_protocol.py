"""BILLmanager answers read as values: error classes, proxy pages, rows, paging; and malformed rows on a wire."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from etl.db.staging import RejectedRecord
from etl.http.errors import (
    AuthenticationError,
    BadRequest,
    PermissionDenied,
    ProtocolError,
    ProxyPageError,
    ServerError,
    SessionExpired,
)
from etl.http.response import RawResponse
from etl.http.transport import HttpTransport
from etl.pipeline.extract import extract_stream
from etl.sources.billmanager.client import BillmanagerClient
from etl.sources.billmanager.doc import FunctionMissing, document, error_for, rows
from etl.sources.billmanager.paging import after_page
from etl.sources.billmanager.streams import AccountsStream
from tests.support import source_for, staged_keys


def answer(doc: dict[str, Any], status: int = 200) -> RawResponse:
    return RawResponse(status, {"Content-Type": "application/json"}, json.dumps({"doc": doc}).encode())


def error_doc(kind: str, obj: str = "", msg: str = "") -> dict[str, Any]:
    error: dict[str, Any] = {"$type": kind, "msg": {"$": msg}}
    if obj:
        error["$object"] = obj
    return {"$func": "x", "error": error}


@pytest.mark.parametrize(
    ("doc", "session", "expected"),
    [
        (error_doc("auth", "auth", "The session has expired"), True, SessionExpired),
        (error_doc("auth", "authinfo"), False, AuthenticationError),
        (error_doc("auth", "username", "Invalid username or password"), False, AuthenticationError),
        (error_doc("access", "auth"), True, PermissionDenied),
        (error_doc("access", "func", "Insufficient privileges"), True, PermissionDenied),
        (error_doc("authtype", "", "Authorization type"), True, SessionExpired),
        (error_doc("authtype"), False, AuthenticationError),
        (error_doc("missed", "func", "Unknown function: 'vhost'"), True, FunctionMissing),
        (
            error_doc("missed", "", "Не удалось найти функцию 'vds'. Возможно, управляющий модуль не загружен."),
            True,
            FunctionMissing,
        ),
        (error_doc("missed", "elid"), True, BadRequest),
        (error_doc("value", "p_cnt"), True, BadRequest),
        (error_doc("exists", "user"), True, BadRequest),
        (error_doc("license"), True, ProtocolError),
    ],
)
def test_doc_errors_are_classified_by_type_and_object(doc, session, expected) -> None:
    """Each ``$type``/``$object`` pair maps to one exception class; expiry only counts on an accepted session."""
    assert type(error_for(document(answer(doc), "x"), "x", session=session)) is expected


def test_unknown_function_message_says_it_is_missing_from_the_installation() -> None:
    """An unknown function reads as a configuration gap, not as a generic bad request."""
    error = error_for(error_doc("missed", "func", "Unknown function"), "vhost", session=True)
    assert "func=vhost: the function is not available on this installation" in str(error)


def test_server_text_is_scrubbed_of_secrets() -> None:
    """A password the server echoes in its message never reaches the exception text."""
    error = error_for(error_doc("value", "password", "bad value 'hunter2-secret'"), "auth", session=False,
                      secrets=["hunter2-secret"])  # fmt: skip
    assert "hunter2-secret" not in str(error) and "***" in str(error)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (RawResponse(502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>"), ServerError),
        (RawResponse(200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><title>BILLmanager</title>"), ProxyPageError),
        (RawResponse(200, {"Content-Type": "application/json"}, b'{"nodoc": 1}'), ProxyPageError),
    ],
)
def test_infrastructure_answers_are_retryable(response, expected) -> None:
    """5xx pages, HTML where JSON was asked and JSON without a doc are retried, never staged."""
    with pytest.raises(expected):
        document(response, "account")


@pytest.mark.parametrize(
    ("doc", "count"),
    [({}, 0), ({"elem": {"id": {"$": "1"}}}, 1), ({"elem": [{"id": {"$": "1"}}, {"id": {"$": "2"}}]}, 2)],
)
def test_rows_accept_absent_lone_and_listed_elems(doc, count) -> None:
    """No ``elem`` is an empty list and a lone object is a one-row list."""
    assert len(rows(doc)) == count


def paged(total: int | None, p_num: int = 1, p_cnt: int | None = None, func: str | None = "account") -> dict[str, Any]:
    doc: dict[str, Any] = {"p_num": {"$": str(p_num)}}
    if func is not None:
        doc["$func"] = func
    if total is not None:
        doc["p_elems"] = {"$": str(total)}
    if p_cnt is not None:
        doc["p_cnt"] = {"$": str(p_cnt)}
    return doc


def at(p_num: int, p_cnt: int, p_elems: int | None = None) -> dict[str, int]:
    cursor = {"p_num": p_num, "p_cnt": p_cnt}
    return cursor if p_elems is None else {**cursor, "p_elems": p_elems}


@pytest.mark.parametrize(
    ("doc", "count", "cursor", "expected"),
    [
        (paged(25, 1, 10), 10, at(1, 10), at(2, 10, 25)),
        (paged(25, 3, 10), 5, at(3, 10, 25), None),
        (paged(20, 2, 10), 10, at(2, 10, 20), None),
        (paged(500, 1, 500), 500, at(1, 100), None),  # more rows than asked: paging ignored
        (paged(250, 1, 100), 100, at(1, 500), {**at(2, 100, 250), "capped": True}),  # a capped page size: go on
        (paged(250, 1, 500), 100, at(1, 500), {**at(2, 100, 250), "capped": True}),  # ... even echoing the size asked
        (paged(250, 2, 100), 90, {**at(2, 100, 250), "capped": True}, {**at(3, 100, 250), "capped": True}),  # short
        # again at the served size: rows left out, not a cap (a doubt, below); read on at this size
        (paged(250, 3, 100), 50, at(3, 100, 250), None),
        (paged(0), 0, at(1, 10), None),
        (paged(None), 10, at(1, 10), at(2, 10)),  # no p_elems: a full page goes on
        (paged(None, 3), 4, at(3, 10), at(7, 4)),  # ... a short one is confirmed by the page after it (row 25..)
        (paged(None, 3), 7, at(3, 10), at(10, 3)),  # ... at most that size, aligned to the rows read (27 = 9 x 3)
        (paged(None, 3), 1, at(3, 10), at(22, 1)),
        (paged(None, 7), 0, at(7, 4), None),  # ... an empty answer of the right function ends it
    ],
)
def test_paging_decisions(doc, count, cursor, expected) -> None:
    """The next page follows from p_elems and the size the server really serves; ignored paging ends the scan."""
    assert after_page(doc, "account", cursor, count)[0] == expected


def test_a_page_short_again_after_a_cap_is_rows_left_out() -> None:
    """Once paging at the size a cap served, a short page is not another cap: it is a doubt naming the counts."""
    _cursor, evidence = after_page(paged(250, 2, 100), "account", {**at(2, 100, 250), "capped": True}, 90)
    assert evidence.doubt and "answered 90 of 100 rows although p_elems says 250" in evidence.doubt
    assert after_page(paged(250, 1, 500), "account", at(1, 500), 100)[1].doubt is None


def test_a_server_answering_another_page_is_a_protocol_error() -> None:
    """Page 2 answered as page 1 would repeat forever, so the scan stops with a clear error."""
    with pytest.raises(ProtocolError, match="asked for page 2"):
        after_page(paged(30, 1, 10), "account", at(2, 10), 10)


ROWS: list[Any] = [
    {"id": {"$": "1"}, "name": {"$": "Good One"}},
    {"name": {"$": "no id at all"}},
    "a bare string",
    {"id": {"$": ""}, "name": {"$": "empty id"}},
    {"id": {"nested": ["x"]}, "name": {"$": "id without text"}},
    {"id": {"$": "6"}, "name": {"$": "Good Six"}, "unknown_column": {"$attr": "kept", "$": "v"}},
]


def tiny_panel() -> web.Application:
    """A panel that logs in and serves one client list holding malformed rows, in BILLmanager's shape."""

    async def handle(request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("func") == "auth":
            return web.json_response({"doc": {"auth": {"$id": "sid-1", "$": "sid-1"}}})
        doc = {"p_elems": {"$": str(len(ROWS))}, "p_num": {"$": "1"}, "p_cnt": {"$": "100"}, "elem": ROWS}
        return web.json_response({"doc": doc})

    app = web.Application()
    app.router.add_post("/billmgr", handle)
    return app


async def test_malformed_rows_are_rejected_with_reasons_and_the_rest_staged(engine) -> None:
    """Rows without a usable id are filed as rejected with their reason; good rows are staged whole."""
    async with TestServer(tiny_panel(), host="127.0.0.1") as server:
        source = source_for("billmanager", str(server.make_url("/billmgr")))
        async with HttpTransport(source) as transport:
            client = BillmanagerClient(source, transport)
            await client.open()
            result = await extract_stream(engine, AccountsStream(client, source), source=source.name, run_id="r1")
    assert result.complete and (result.counts.new, result.counts.rejected) == (2, 4)
    assert await staged_keys(engine, source.name) == {("customer", "1"), ("customer", "6")}
    async with engine.connect() as conn:
        reasons = sorted((await conn.scalars(select(RejectedRecord.reason))).all())
    assert reasons == sorted(
        ["id is empty", "id is not a text node: \"{'nested': ['x']}\"", "row has no id",
         "row is a str, not an object"]
    )  # fmt: skip
