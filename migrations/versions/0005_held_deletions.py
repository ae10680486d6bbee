"""scan passes on staged rows, and held deletions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 07:40:00

``staged_records.seen_scan`` names the scan pass that last saw a row; a complete full scan marks
deleted only rows its pass did not see, so a list re-read after rows shifted under offset paging
deletes exactly what is gone. Existing rows keep it empty and are read as marked by their last run
(``coalesce(seen_scan, last_seen_run)``), which is what the scans in progress count as theirs (their
state names their runs): no rewrite of a large table at upgrade.

``held_deletions`` / ``held_deletion_rows`` keep the deletions a full scan would have marked when
its evidence failed or the deletion guard refused it, with the pass mark each row had then, so
``etl deletions accept`` applies exactly that set minus the rows seen since.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonDocument = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("staged_records") as batch:
        batch.add_column(sa.Column("seen_scan", sa.String(36), nullable=True))
    op.create_table(
        "held_deletions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("live_before", sa.Integer(), nullable=False),
        sa.Column("would_delete", sa.Integer(), nullable=False),
        sa.Column("evidence", JsonDocument, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_deletions")),
    )
    op.create_index("ix_held_deletions_stream", "held_deletions", ["source", "stream", "status"])
    op.create_table(
        "held_deletion_rows",
        sa.Column("hold_id", BigId, nullable=False),
        sa.Column("staged_id", BigId, nullable=False),
        sa.Column("seen_scan", sa.String(36), nullable=True),
        sa.ForeignKeyConstraint(
            ["hold_id"],
            ["held_deletions.id"],
            name=op.f("fk_held_deletion_rows_hold_id_held_deletions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("hold_id", "staged_id", name=op.f("pk_held_deletion_rows")),
    )


def downgrade() -> None:
    op.drop_table("held_deletion_rows")
    op.drop_index("ix_held_deletions_stream", table_name="held_deletions")
    op.drop_table("held_deletions")
    with op.batch_alter_table("staged_records") as batch:
        batch.drop_column("seen_scan")
