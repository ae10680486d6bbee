"""staged payloads as verbatim text

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 05:00:00

Staging stores each record's JSON text exactly as the source sent it and hashes that text.
A text column keeps it byte for byte, where PostgreSQL's jsonb re-encoded it; it also spares
the database a JSON parse per insert. Changing the type drops the column's lz4 setting on
PostgreSQL, so it is set again. Hashes of miclinik records are now taken over the server's
text, so the first extract after this upgrade counts them as changed, once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LZ4 = (
    "DO $$ BEGIN EXECUTE 'ALTER TABLE staged_records ALTER COLUMN payload SET COMPRESSION lz4'; "
    "EXCEPTION WHEN OTHERS THEN NULL; END $$"
)


def upgrade() -> None:
    _retype_payload("text", new=sa.Text(), old=sa.JSON())


def downgrade() -> None:
    _retype_payload("jsonb", new=sa.JSON(), old=sa.Text())


def _retype_payload(postgresql_type: str, *, new: sa.types.TypeEngine, old: sa.types.TypeEngine) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER TABLE staged_records ALTER COLUMN payload TYPE {postgresql_type} USING payload::{postgresql_type}"
        )
        op.execute(LZ4)
        return
    with op.batch_alter_table("staged_records") as batch:
        batch.alter_column("payload", type_=new, existing_type=old, existing_nullable=False)
