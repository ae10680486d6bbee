"""Declarative base with a constraint naming convention, so migrations name things stably."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import JSON, BigInteger, Dialect, Integer, MetaData, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from etl.db.engine import json_text

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


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


# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
