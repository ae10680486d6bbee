"""Column types shared by every schema area, and the JSON serializer the engines use."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import JSON, BigInteger, Dialect, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from etl.payload import JsonText

# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JsonDocument = JSON().with_variant(JSONB(), "postgresql")

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def json_text(value: object) -> str:
    """JSON columns' serializer: orjson is several times faster than json for wide payloads."""
    if isinstance(value, JsonText):
        return value
    return orjson.dumps(value, default=str).decode()


class VerbatimJson(TypeDecorator[Any]):
    """A JSON document in a text column, stored exactly as given when it is already JSON text.

    Staged payloads are the sources' own text, validated and hashed before they get here; a
    text column keeps them byte for byte (key order, number spelling) and spares the database
    a JSON parse per insert (a quarter of PostgreSQL's insert cost for 3-5 KB payloads; jsonb
    would also re-encode each one). Reads give the decoded value; SQL wanting JSON operators
    casts, ``payload::json ->> 'ref'``.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json_text(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else orjson.loads(value)
