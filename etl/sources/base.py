"""The small interface every billing system implements: a client and declarative streams.

A source package provides a :class:`SourceClient` (protocol, auth, error
classification) and a few :class:`Stream` declarations. A stream says what it
is (name, staged entity, primary key, whether it is incremental) and how to
fetch *one* page at a cursor; the generic engine in :mod:`etl.pipeline.extract`
owns the loop, the checkpoints, the staging and the counts.

Cursors and watermarks are plain JSON dicts, committed with each staged page,
so a killed run resumes exactly where it stopped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from etl.http.transport import HttpTransport
from etl.settings import SourceSettings
from etl.sources.rawjson import RawJson, peek

Cursor = dict[str, Any]


class RecordRejected(Exception):
    """A record that cannot be staged; the message is the reason kept with it."""


@dataclass(frozen=True)
class Page:
    """One fetched page: the raw records, where to resume after them, and what the server said of time.

    ``next_cursor`` is ``None`` when the stream has nothing more. ``watermark`` is
    the server's notion of "now" for this call, when the protocol gives one
    (Microbizz's envelope date/time): the next incremental run starts there.
    """

    records: list[Any]
    next_cursor: Cursor | None
    watermark: Cursor | None = None
    calls: int = 1


class SourceClient:
    """Speaks one protocol over an :class:`HttpTransport`; knows nothing of staging."""

    def __init__(self, settings: SourceSettings, transport: HttpTransport) -> None:
        self.settings = settings
        self.transport = transport

    async def open(self) -> None:
        """Authenticate or check credentials, so a bad key fails before any stream starts."""

    async def close(self) -> None:
        """Release server-side state (sessions) if the protocol has any."""


class Stream(ABC):
    """A declaration of one stream; subclasses set the class attributes and implement :meth:`fetch`."""

    name: ClassVar[str]
    entity: ClassVar[str]
    primary_key: ClassVar[str] = "id"
    incremental: ClassVar[bool] = False
    # True when page N+1's cursor is known without reading page N: the engine may fetch ahead.
    lookahead: ClassVar[bool] = False

    def __init__(self, client: Any, settings: SourceSettings) -> None:
        self.client = client
        self.settings = settings

    @abstractmethod
    def start(self, watermark: Cursor | None) -> Cursor:
        """The first cursor of a scan: everything when ``watermark`` is None, else changes since it."""

    @abstractmethod
    async def fetch(self, cursor: Cursor) -> Page:
        """Read one page at ``cursor``; no loops here, the engine calls again with ``next_cursor``."""

    def predict(self, cursor: Cursor) -> Cursor | None:
        """For lookahead streams, the cursor after ``cursor`` without reading it."""
        return None

    def scan_watermark(self, watermark: Cursor | None) -> Cursor | None:
        """The watermark the *next* run should use, decided when this scan starts (clock-based streams)."""
        return None

    def source_id(self, record: Any) -> str:
        """The record's id in its system; raise :class:`RecordRejected` when it has none."""
        if isinstance(record, RawJson):
            try:
                value = peek(record, self.primary_key)
            except TypeError as exc:
                raise RecordRejected(f"record is a {exc}, not an object") from None
        elif isinstance(record, Mapping):
            value = record.get(self.primary_key)
        else:
            raise RecordRejected(f"record is a {type(record).__name__}, not an object")
        if isinstance(value, bool) or value in (None, ""):
            raise RecordRejected(f"missing {self.primary_key}")
        if not isinstance(value, str | int):
            raise RecordRejected(f"{self.primary_key} is a {type(value).__name__}, not a string or integer")
        return str(value)


@dataclass
class SourceDefinition:
    """What the registry knows of a kind: its client and its streams, in extraction order."""

    kind: str
    client_class: type[SourceClient]
    streams: tuple[type[Stream], ...]
    notes: dict[str, str] = field(default_factory=dict)

    def stream_names(self) -> list[str]:
        return [stream.name for stream in self.streams]
