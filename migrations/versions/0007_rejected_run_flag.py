"""flag staged rows whose newer answer was rejected

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 10:00:00

``staged_records.rejected_run`` names the run that last received this record in a form staging
refused (invalid UTF-8, a NUL, a record past ``max_record_bytes``...): the staged payload is the
last good one, kept and counted as seen, and older than what the server holds. A later good
answer clears it. Schema only; existing rows start unflagged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staged_records") as batch:
        batch.add_column(sa.Column("rejected_run", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staged_records") as batch:
        batch.drop_column("rejected_run")
