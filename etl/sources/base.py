"""The small interface every billing system implements: a client, declarative streams, typed settings.

A source package provides a :class:`SourceClient` (protocol, auth and a pure classifier of
its answers), a few :class:`Stream` declarations, and the pydantic models of its
``credentials`` and ``options`` (secrets as ``SecretStr``), all named in one
:class:`SourceDefinition` registered in :mod:`etl.sources.registry`. A stream says what it is
(name, staged entity, primary key, whether it is incremental) and how to fetch *one* page at
a cursor; the engine in :mod:`etl.pipeline.extract` owns the loop, refuses cursors that do not
move forward, checkpoints, stages and counts.

Cursors and watermarks are plain JSON dicts, committed with each staged page, so a killed
run resumes exactly where it stopped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, get_args

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from etl.payload import RawJson, peek
from etl.pipeline.state import Cursor
from etl.settings import SourceSettings

if TYPE_CHECKING:
    from etl.http.transport import HttpTransport

__all__ = [
    "Cursor",
    "Evidence",
    "NoOptions",
    "Page",
    "RecordRejected",
    "SourceClient",
    "SourceDefinition",
    "Stream",
]


class RecordRejected(Exception):
    """A record that cannot be staged; the message is the reason kept with it."""


class SettingsModel(BaseModel):
    """Base of every kind's credentials and options: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _plain_identifiers(cls, data: Any) -> Any:
        # Settings built in code may wrap every credential as a secret; a login is not one.
        if not isinstance(data, dict):
            return data
        plain = set(cls.model_fields) - secret_fields(cls)
        return {k: v.get_secret_value() if k in plain and isinstance(v, SecretStr) else v for k, v in data.items()}


class NoOptions(SettingsModel):
    """A kind without protocol switches."""


@dataclass(frozen=True)
class Evidence:
    """What one page says, in the protocol's own terms, about whether the scan sees the whole list.

    A full scan marks deletions only on proof (protocols.md §1.9, §4.5: a restricted key, a
    logon form or a silent page cap all read as a shorter list without any error):

    - ``total``: the server's own count of the whole list (BILLmanager ``p_elems``), when it
      gives one; the pass must receive at least that many rows.
    - ``doubt``: a named check this page failed (``$func`` is not the function asked, no
      ``p_elems`` on a paged list...); the scan still stages what it read, but deletes nothing.
    - ``shifted``: rows moved under offset paging since the pass began (``p_elems`` changed):
      the engine re-reads the list in a new pass, so only rows missing from a consistent pass
      are marked deleted.
    """

    total: int | None = None
    doubt: str | None = None
    shifted: str | None = None


@dataclass(frozen=True)
class Page:
    """One fetched page: the raw records, where to resume after them, and what the server said of time.

    ``next_cursor`` is ``None`` when the stream has nothing more. ``watermark`` is where the
    *next* incremental scan should start, as far as this call can tell (the server's clock,
    minus any overlap the protocol needs); the engine keeps the one of the scan's first page.
    ``received`` is how many rows the server answered, when the stream kept only some of them
    (the completeness check counts what the server sent, not what this stream stages).
    """

    records: list[Any]
    next_cursor: Cursor | None
    watermark: Cursor | None = None
    calls: int = 1
    evidence: Evidence = field(default_factory=Evidence)
    received: int | None = None


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
    # True when a page's records come in ascending numeric id order (keyset paging): the
    # engine refuses a page whose ids run backwards.
    ascending_ids: ClassVar[bool] = False
    # True for offset-paged lists (page N = rows N*size..): a row deleted between two pages while
    # another is added shifts rows unseen, so a full scan's deletions are confirmed by a second pass
    # (only rows missing from both are deleted); it costs a second read only when rows are missing.
    offset_paged: ClassVar[bool] = False
    # For incremental streams whose cursor misses some changes (content changing without its
    # timestamp, hard deletions): a run does a full scan when the last complete one is older.
    # Settings override it per stream (``full_scan_every``).
    full_scan_every: ClassVar[timedelta | None] = None

    def __init__(self, client: Any, settings: SourceSettings) -> None:
        self.client = client
        self.settings = settings

    @abstractmethod
    def start(self, watermark: Cursor | None) -> Cursor:
        """The first cursor of a scan: everything when ``watermark`` is None, else changes since it."""

    @abstractmethod
    async def fetch(self, cursor: Cursor) -> Page:
        """Read one page at ``cursor``; no loops here, the engine calls again with ``next_cursor``."""

    async def partition(self, cursor: Cursor, parts: int) -> list[Cursor]:
        """Split a pass starting at ``cursor`` into up to ``parts`` cursors read at once, covering
        together exactly what ``cursor`` covers (keyset streams: id ranges, the last open-ended).
        Called once per pass, before its first page; most streams cannot split."""
        return [cursor]

    def merge(self, cursors: list[Cursor]) -> Cursor:
        """One cursor covering at least what the open partitions' ``cursors`` still cover (rows read
        twice are harmless: staging diffs by hash). Only streams that :meth:`partition` need it."""
        raise NotImplementedError(f"{type(self).__name__} does not split its scans")

    def predict(self, cursor: Cursor) -> Cursor | None:
        """For lookahead streams, the cursor after ``cursor`` without reading it."""
        return None

    def position(self, cursor: Cursor) -> tuple[Any, ...] | None:
        """A value that must grow from each cursor to the next, when the paging has an order."""
        return None

    def is_deleted(self, record: Any) -> bool:
        """Whether the record is the server's tombstone (a ``deleted`` flag): staged, and marked deleted."""
        return False

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


@dataclass(frozen=True)
class SourceDefinition:
    """Everything the pipeline knows of a kind, and the only place it is said.

    ``mapping`` (a pure module: staged payload -> canonical candidate) and ``writer`` (the
    write-back calls) are filled by the packages that implement them. ``wire_secrets`` names
    fields that carry secrets on the wire without being settings fields (a header, a form
    field holding a session id); the redactor masks them with every ``SecretStr`` field."""

    kind: str
    client_class: type[SourceClient]
    streams: tuple[type[Stream], ...]
    credentials: type[BaseModel]
    options: type[BaseModel] = NoOptions
    mapping: ModuleType | None = None
    writer: type | None = None
    wire_secrets: tuple[str, ...] = ()
    notes: Mapping[str, str] = field(default_factory=dict)
    # Pure check of credentials and options taken together (each model checks itself alone):
    # the problems, each naming its keys; run when settings are validated.
    check: Callable[[Any, Any], list[str]] | None = None

    def stream_names(self) -> list[str]:
        return [stream.name for stream in self.streams]

    def secret_names(self) -> set[str]:
        """Names of every field that holds a secret: ``SecretStr`` fields of both models, and wire names."""
        return {*secret_fields(self.credentials), *secret_fields(self.options), *self.wire_secrets}


def secret_fields(model: type[BaseModel]) -> set[str]:
    """Names (and aliases) of the fields of ``model`` typed ``SecretStr`` or ``SecretStr | None``."""
    names = set()
    for name, info in model.model_fields.items():
        if info.annotation is SecretStr or SecretStr in get_args(info.annotation):
            names.update({name, info.alias} - {None})
    return names
