"""staged payloads compacted and hashed with XXH3-128

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 05:20:00

Staging now stores each JSON record without the whitespace between its tokens (strings, escapes,
number spelling and key order byte for byte) and hashes that text with XXH3-128 instead of
SHA-256, so a server switching between pretty and compact output (Dolibarr's
API_PRODUCTION_MODE) changes nothing. This revision rewrites every stored payload and hash the
same way, in batches, so the first run after the upgrade counts 0 changed. It uses the libraries
directly, not the application's code, so it keeps meaning the same when that code changes.

Downgrade puts SHA-256 hashes of the stored (compact) text back; payloads stay compact. The old
code hashed a pretty-printing server's bytes as sent, so after a downgrade its first run counts
those records as changed, once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import msgspec
import sqlalchemy as sa
import xxhash
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 5000
RECORDS = sa.table(
    "staged_records",
    sa.column("id", sa.BigInteger),
    sa.column("payload", sa.Text),
    sa.column("content_hash", sa.String),
)


def _compact(data: bytes) -> bytes:
    try:
        return msgspec.json.format(data, indent=-1)
    except msgspec.DecodeError:
        return data


def _rewrite(transform: Callable[[bytes], bytes], digest: Callable[[bytes], str]) -> None:
    connection = op.get_bind()
    update = (
        RECORDS.update()
        .where(RECORDS.c.id == sa.bindparam("row_id"))
        .values(payload=sa.bindparam("new_payload"), content_hash=sa.bindparam("new_hash"))
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(RECORDS.c.id, RECORDS.c.payload).where(RECORDS.c.id > last).order_by(RECORDS.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        changes = []
        for row_id, payload in rows:
            data = transform(payload.encode("utf-8", "surrogatepass"))
            text = data.decode("utf-8", "surrogatepass")
            changes.append({"row_id": row_id, "new_payload": text, "new_hash": digest(data)})
        connection.execute(update, changes)
        last = rows[-1][0]


def upgrade() -> None:
    _rewrite(_compact, xxhash.xxh3_128_hexdigest)


def downgrade() -> None:
    _rewrite(lambda data: data, lambda data: hashlib.sha256(data).hexdigest())
