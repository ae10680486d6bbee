"""Every model, imported once so ``Base.metadata`` is complete (Alembic's target)."""

from __future__ import annotations

from etl.db.base import Base
from etl.db.staging import RejectedRecord, StagedRecord, StreamState, SyncRun

metadata = Base.metadata
__all__ = ["RejectedRecord", "StagedRecord", "StreamState", "SyncRun", "metadata"]
