"""Replay every recorded Dolibarr 23 exchange against one miclinik simulator that starts empty.

The fixtures in ``shared/fixtures/dolibarr`` were recorded in sequence on an empty database; their
README gives an order consistent with every id and count. The whole sequence is replayed once per
test session against one app (``world=None``), with an injected clock set to the recording's time,
and each fixture is then its own test case comparing status, body shape (same keys, recursively,
and same JSON value types), exact error texts and the form of generated refs.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from etl.simulators.miclinik import DEMO_CREDENTIALS, STATE, MiclinikOptions, create_app
from tests.support import DOLIBARR_FIXTURES, require_fixtures

FIXTURES = DOLIBARR_FIXTURES
RECORDED_AT = 1795418624  # 2026-11-23 07:23:44 UTC, the recording's date_creation
UPDATED_AT = RECORDED_AT + 26  # after the cut-off 07:24:00 that products_list_sqlfilters_tms uses

# The README's replay order; ``None`` marks where products 2..5 were created by unrecorded calls.
REPLAY_ORDER: list[str | None] = [
    "status", "auth_missing_api_key", "auth_bad_api_key", "login_post", "login_get", "login_bad_password",
    "users_list", "user_get", "unknown_endpoint", "product_get_unknown_id", "order_get_unknown_id",
    "thirdparty_get_unknown_id",
    "products_list_empty", "orders_list_empty", "thirdparties_list_empty", "thirdparties_list_sqlfilters_no_match",
    "product_create", "product_create_duplicate_ref", "product_create_missing_label", "product_create_malformed_json",
    "product_get", None, "product_update", "products_list_paged", "products_list_pagination_data",
    "products_list_properties", "products_list_page_beyond_end", "products_list_page_beyond_end_pagination_data",
    "products_list_sqlfilters_tms", "product_create_special_chars", "product_get_special_chars",
    "products_list_sqlfilters_like", "products_list_sqlfilters_apostrophe_eq",
    "products_list_sqlfilters_apostrophe_backslash", "products_list_sqlfilters_apostrophe_like",
    "thirdparty_create", "thirdparties_list_sqlfilters", "thirdparty_get", "thirdparties_list_sqlfilters_invalid",
    "thirdparty_create_special_chars", "thirdparty_get_special_chars", "thirdparties_list_page_beyond_end",
    "order_create", "order_add_line", "order_get_with_lines", "order_create_with_lines",
    "order_get_created_with_lines", "order_validate", "order_validate_already_validated", "orders_list",
    "orders_list_sqlfilters_validated", "orders_list_page_beyond_end",
    "prodmode_status", "prodmode_auth_bad_api_key", "prodmode_product_create_duplicate_ref",
    "prodmode_product_create_malformed_json", "prodmode_product_get_unknown_id",
]  # fmt: skip
NAMES = [name for name in REPLAY_ORDER if name is not None]

# Generated values are compared by form (digits masked): they depend on the clock and on counters.
FORM_KEYS = frozenset({"ref", "code_client", "trackid", "date_tz"})
# Fixtures whose point is the stored text: their text values are compared exactly.
EXACT_TEXT = frozenset({"product_get_special_chars", "thirdparty_get_special_chars", "products_list_sqlfilters_like"})
EXACT_KEYS = frozenset({"ref", "label", "description", "name", "note_public"})
# The recording order the README gives puts the product update before the orders, but the orders were
# recorded before it: an order line's product weight/volume unit is NULL until a product update writes
# 0 (as the simulator models it), so these two keys may be null in one and "0" in the other.
ORDER_DEPENDENT = frozenset({"weight_units", "volume_units"})


class Clock:
    """A settable server clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def substitute(value: Any) -> Any:
    """Put the demo credentials where the recording redacted them."""
    if isinstance(value, dict):
        return {key: substitute(item) for key, item in value.items()}
    if isinstance(value, str):
        if value == "<valid-api-key>":
            return DEMO_CREDENTIALS["api_key"]
        if value == "<redacted-password>":
            return DEMO_CREDENTIALS["password"]
        match = re.fullmatch(r"<invalid-api-key: (.*)>", value)
        return match.group(1) if match else value
    return value


async def send(session: aiohttp.ClientSession, base: str, request: dict[str, Any]) -> dict[str, Any]:
    """Send one recorded request; return status, content type and body as the recording keeps them."""
    headers = substitute(request["headers"])
    query = {key: str(value) for key, value in substitute(request["query"]).items()}
    body = request["body"]
    data = body if isinstance(body, str) else (None if body is None else json.dumps(substitute(body)))
    async with session.request(
        request["method"], base + request["path"], params=query, headers=headers, data=data
    ) as response:
        text = await response.text()
        content_type = response.headers.get("Content-Type", "")
        is_json = content_type.startswith("application/json") and text != ""
        return {
            "status": response.status,
            "content_type": content_type,
            "body_is_json": is_json,
            "body": json.loads(text) if is_json else text,
        }


def unrecorded_products() -> list[dict[str, Any]]:
    """Products 2..5 as products_list_paged / products_list_pagination_data show them (the rest by pattern)."""
    seen: dict[int, dict[str, Any]] = {}
    for name in ("products_list_paged", "products_list_pagination_data"):
        body = load(name)["response"]["body"]
        for item in body["data"] if isinstance(body, dict) else body:
            seen[int(item["id"])] = item
    products = []
    for n in range(2, 6):
        item = seen.get(n, {"ref": f"FIX-{n:03d}", "label": f"Fixture product {n}", "price": str(n * 10), "type": "0"})
        products.append(
            {
                "ref": item["ref"],
                "label": item["label"],
                "price": float(item["price"]),
                "type": int(item["type"]),
                "tva_tx": 20,
                "status": 1,
                "status_buy": 1,
            }
        )
    return products


async def replay_all() -> dict[str, dict[str, Any]]:
    """Run the whole recorded sequence once, in order, against one empty simulator."""
    clock = Clock(RECORDED_AT)
    options = MiclinikOptions(clock=clock, bad_key_delay=0.01, extra_keys=False)
    app = create_app(None, options=options)
    results: dict[str, dict[str, Any]] = {}
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        base = str(server.make_url(""))
        for name in REPLAY_ORDER:
            if name is None:
                for product in unrecorded_products():
                    created = await send(
                        session,
                        base,
                        {
                            "method": "POST",
                            "path": "/api/index.php/products",
                            "query": {},
                            "headers": {"DOLAPIKEY": "<valid-api-key>"},
                            "body": product,
                        },
                    )
                    assert created["status"] == 200, created
                clock.now = UPDATED_AT
                continue
            if name.startswith("prodmode_"):
                app[STATE].options.production_mode = True
            results[name] = await send(session, base, load(name)["request"])
    return results


@pytest.fixture(scope="module")
def replayed() -> dict[str, dict[str, Any]]:
    """The simulator's answers to the whole recorded sequence."""
    require_fixtures()
    return asyncio.run(replay_all())


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def mask(text: str) -> str:
    return re.sub(r"\d", "9", text)


def compare(expected: Any, actual: Any, path: str, fixture: str, problems: list[str]) -> None:
    """Collect every difference in shape, type, error text or generated-value form."""
    key = path.rsplit(".", 1)[-1]
    if json_type(expected) != json_type(actual):
        if not (key in ORDER_DEPENDENT and {json_type(expected), json_type(actual)} == {"null", "string"}):
            problems.append(f"{path}: type {json_type(actual)} != recorded {json_type(expected)}")
        return
    if isinstance(expected, dict):
        if set(expected) != set(actual):
            missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
            problems.append(f"{path}: keys missing {missing}, unexpected {extra}")
        for name in expected.keys() & actual.keys():
            compare(expected[name], actual[name], f"{path}.{name}", fixture, problems)
    elif isinstance(expected, list):
        if len(expected) != len(actual):
            problems.append(f"{path}: {len(actual)} items != recorded {len(expected)}")
        for index, (left, right) in enumerate(zip(expected, actual, strict=False)):
            compare(left, right, f"{path}[{index}]", fixture, problems)
    elif isinstance(expected, str):
        if path.startswith("body.error.") and expected != actual:
            problems.append(f"{path}: {actual!r} != recorded {expected!r}")
        elif key in FORM_KEYS and expected and mask(expected) != mask(actual):
            problems.append(f"{path}: form of {actual!r} != recorded {expected!r}")
        elif fixture in EXACT_TEXT and key in EXACT_KEYS and expected != actual:
            problems.append(f"{path}: {actual!r} != recorded {expected!r}")


def test_replay_order_covers_every_fixture() -> None:
    """Every recorded fixture file is part of the replay, exactly once."""
    require_fixtures()
    assert sorted(NAMES) == sorted(path.stem for path in FIXTURES.glob("*.json"))
    assert len(NAMES) == len(set(NAMES))


@pytest.mark.parametrize("name", NAMES)
def test_fixture_replays(name: str, replayed: dict[str, dict[str, Any]]) -> None:
    """The simulator answers the recorded request with the recorded status, shape, types and texts."""
    recorded = load(name)["response"]
    actual = replayed[name]
    assert actual["status"] == recorded["status"], actual
    expected_type = recorded["headers"].get("content-type", "")
    assert actual["content_type"].split(";")[0] == expected_type.split(";")[0]
    if not recorded["body_is_json"] or recorded["status"] == 304:
        assert not actual["body_is_json"]
        assert actual["body"] == recorded["body"]
        return
    assert actual["body_is_json"], actual
    problems: list[str] = []
    compare(recorded["body"], actual["body"], "body", name, problems)
    assert not problems, "\n".join(problems)
