"""scan state holds a list of cursors

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 04:30:00

A scan in progress kept one ``cursor``; it now keeps ``cursors``, one per partition of the
scan (one today). Rows of the old shape are converted, and back on downgrade (the first
partition's cursor; a scan with several unfinished partitions cannot be expressed in the
old shape, so the downgrade refuses to lose it). Data only, no schema change.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATES = sa.table(
    "stream_states", sa.column("source", sa.String), sa.column("stream", sa.String), sa.column("state", sa.JSON)
)


def _rewrite(change: Any) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(STATES.c.source, STATES.c.stream, STATES.c.state)).all()
    for source, stream, state in rows:
        state = json.loads(state) if isinstance(state, str) else state
        scan = (state or {}).get("scan")
        if not isinstance(scan, dict):
            continue
        change(scan, f"{source}.{stream}")
        connection.execute(
            STATES.update().where(STATES.c.source == source, STATES.c.stream == stream).values(state=state)
        )


def _to_list(scan: dict[str, Any], _name: str) -> None:
    if "cursors" not in scan:
        scan["cursors"] = [scan.pop("cursor", None)]


def _to_single(scan: dict[str, Any], name: str) -> None:
    if "cursors" not in scan:
        return
    open_cursors = [cursor for cursor in scan["cursors"] if cursor is not None]
    if len(open_cursors) > 1:
        raise RuntimeError(f"{name}: a scan with {len(open_cursors)} open partitions; finish it before downgrading")
    scan["cursor"] = open_cursors[0] if open_cursors else None
    del scan["cursors"]


def upgrade() -> None:
    _rewrite(_to_list)


def downgrade() -> None:
    _rewrite(_to_single)
