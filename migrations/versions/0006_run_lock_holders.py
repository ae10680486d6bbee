"""run lock holders

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 09:00:00

``run_lock_holders`` names the job holding the database's run lock (etl.db.runlock): run id,
job, host, pid and since, written by the holder once it has the lock, so a refused run can say
whose the lock is. The lock itself is a PostgreSQL advisory lock or a file lock beside an SQLite
database; this table only displays it. Schema only: ``sync_runs.status`` gains the value
``abandoned`` (a run left ``running`` by a holder that died), which its String(16) already holds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_lock_holders",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_lock_holders")),
    )


def downgrade() -> None:
    op.drop_table("run_lock_holders")
