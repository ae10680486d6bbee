"""Plain result values of a run: counts per stream, a stream's outcome, a source's outcome.

No I/O and no imports from the rest of the pipeline, so displays and reports can use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StageCounts:
    """Per-stream tallies for one run."""

    records: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    rejected: int = 0
    deleted: int = 0
    pages: int = 0
    calls: int = 0
    repeated: int = 0  # rows this scan pass had already staged, received again

    def add(self, other: StageCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class StreamResult:
    """How one stream of one source ended in a run."""

    source: str
    stream: str
    counts: StageCounts = field(default_factory=StageCounts)
    status: str = "succeeded"
    error: str | None = None
    complete: bool = False

    @property
    def failed(self) -> bool:
        return self.status != "succeeded"


@dataclass
class SourceResult:
    """How one source ended: its streams, its own failure if any, and what the wire saw."""

    source: str
    streams: list[StreamResult] = field(default_factory=list)
    error: str | None = None
    retries: int = 0
    requests: int = 0
