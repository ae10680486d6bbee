"""The toy kind's source package: typed settings, a client with a pure classifier, two keyset streams.

Protocol: ``GET <base>/<listing>/<resource>?after=<id>&limit=<n>`` with the header
``X-Toy-Token`` answers ``{"items": [...]}`` in ascending ``id`` order; ``GET <base>/ping``
checks the token. 401 is a refused token, 503 with ``Retry-After`` a busy server.
"""

from __future__ import annotations

import functools
from typing import ClassVar

from pydantic import Field, SecretStr

from etl.http.errors import AuthenticationError, ProtocolError, Verdict, fail, ok, status_verdict
from etl.http.response import NotJson, RawResponse, Request
from etl.http.retry import parse_retry_after
from etl.sources.base import Cursor, Page, SettingsModel, SourceClient, SourceDefinition, Stream


class ToyCredentials(SettingsModel):
    account: str = Field(min_length=1)
    token: SecretStr


class ToyOptions(SettingsModel):
    listing: str = Field("items", min_length=1)
    probe: str = Field("ping", min_length=1)
    max_page: int = Field(500, ge=1)


def classify(response: RawResponse, what: str, key: str | None) -> Verdict:
    """Pure: a toy answer to its records (or body), or what to do about it."""
    if response.status == 401:
        return fail(AuthenticationError, f"{what}: HTTP 401: token refused", status=401)
    if not 200 <= response.status < 300:
        retry_after = parse_retry_after(response.header("Retry-After"))
        return status_verdict(response.status, f"{what}: HTTP {response.status}", retry_after=retry_after)
    try:
        body = response.json()
    except NotJson as exc:
        return status_verdict(502, f"{what}: {exc}")
    if key is None:
        return ok(body)
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        return fail(ProtocolError, f"{what}: no {key!r} list in the answer")
    return ok(body[key])


class ToyClient(SourceClient):
    def headers(self) -> dict[str, str]:
        return {"X-Toy-Token": self.settings.credentials.token.get_secret_value()}

    async def open(self) -> None:
        url = f"{self.settings.base_url}/{self.settings.options.probe}"
        request = Request("GET", url, headers=self.headers())
        await self.transport.call(request, functools.partial(classify, what="ping", key=None), what="ping", safe=True)

    async def list(self, resource: str, after: int, limit: int) -> list[object]:
        url = f"{self.settings.base_url}/{self.settings.options.listing}/{resource}"
        request = Request("GET", url, params={"after": after, "limit": limit}, headers=self.headers())
        classifier = functools.partial(classify, what=resource, key="items")
        return await self.transport.call(request, classifier, what=resource, safe=True)


class ToyStream(Stream):
    resource: ClassVar[str]
    ascending_ids = True
    client: ToyClient

    def start(self, watermark: Cursor | None) -> Cursor:
        return {"after": 0}

    def position(self, cursor: Cursor) -> tuple[int]:
        return (int(cursor["after"]),)

    async def fetch(self, cursor: Cursor) -> Page:
        limit = min(self.settings.page_size, self.settings.options.max_page)
        records = await self.client.list(self.resource, int(cursor["after"]), limit)
        if len(records) < limit:
            return Page(records, None)
        return Page(records, {"after": int(self.source_id(records[-1]))})


class MembersStream(ToyStream):
    name = "members"
    entity = "customer"
    resource = "members"


class PlansStream(ToyStream):
    name = "plans"
    entity = "product"
    resource = "plans"


SOURCE = SourceDefinition(
    kind="toybill",
    client_class=ToyClient,
    streams=(MembersStream, PlansStream),
    credentials=ToyCredentials,
    options=ToyOptions,
    wire_secrets=("X-Toy-Token",),
)
