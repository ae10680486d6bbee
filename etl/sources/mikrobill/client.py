"""MikroBILL client: ``Process`` calls through the transport seam, batch reads, error classification.

Efficiency is the point of this module. MikroBILL has no "list clients with their
fields" call; a naive reader makes one ``Process`` per property per client. Instead:

- ``API.GetClients`` is called once per run; the sorted id list is kept on the client
  (8 bytes per id) and every client-paged stream slices it.
- From 2.0.9 a batch command reads many properties in one call
  (``Process("API.Client", ["<id>.AutorizeInfo.Name", "<id>.BillingInfo.Money", ...])``,
  protocols.md §2.3); :meth:`MikrobillClient.read` splits a page's paths into batches of
  ``options["batch_items"]`` (default 2000; the core's real limit is [U], so a batch the
  core refuses as too large is halved and the smaller size kept for the rest of the run).
- Each batch item carries its own code. Items answered "busy" are read again, alone,
  up to ``options["item_retries"]`` rounds; items answered "not found" become a
  per-record problem (the stream rejects that record with the reason); any other
  failing code ends the source as :mod:`etl.sources.mikrobill.codes` says.
- Below 2.0.9 (``options["version"]``) the core refuses batches, so the same reads fall
  back to one ``Process`` per property (bounded by ``concurrency``): correct, but about
  ``page_size * properties`` calls per page instead of one or two.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from etl.http.errors import BadRequest, FatalError, ProtocolError, SourceBusy
from etl.http.transport import HttpTransport
from etl.settings import SourceSettings
from etl.sources.base import SourceClient
from etl.sources.mikrobill.codes import CodeTable
from etl.sources.mikrobill.transport import MikrobillTransport, make_transport

log = structlog.get_logger(__name__)
FIRST_BATCH_VERSION = (2, 0, 9)


class StillBusy(SourceBusy):
    """Batch items still answered "busy" after every item retry: the caller reads the page again."""


class BatchTooLarge(BadRequest):
    """The core refused a batch for its size; :meth:`MikrobillClient.read` splits it."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One read path: its value, or ``missing`` = the core's "not found" reason."""

    value: Any = None
    missing: str | None = None


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Outcomes in the order of the paths asked, and how many ``Process`` calls it took."""

    outcomes: list[Outcome]
    calls: int


def parse_version(text: Any) -> tuple[int, ...]:
    """``"2.0.10"`` -> ``(2, 0, 10)``."""
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        raise ProtocolError(f"options.version must look like 2.0.9, not {text!r}") from None


def count_option(options: Mapping[str, Any], key: str, default: int, *, minimum: int) -> int:
    """An integer option, or a fatal error naming it (a typo must not crash the other sources)."""
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FatalError(f"options.{key} must be an integer of at least {minimum}, not {value!r}")
    return value


def id_number(value: Any) -> int | None:
    """A MikroBILL id (JSON number or decimal string, [U] which) as an int, or ``None`` if it is neither."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def parse_ids(value: Any, what: str) -> array:
    """A listing's ids, ascending and unique, as 8-byte ints."""
    if not isinstance(value, list):
        raise ProtocolError(f"{what}: expected a list of ids, got {type(value).__name__}")
    numbers = set()
    for element in value:
        number = id_number(element)
        if number is None:
            raise ProtocolError(f"{what}: {element!r} is not a numeric id (shortguid)")
        numbers.add(number)
    return array("q", sorted(numbers))


class MikrobillClient(SourceClient):
    """One MikroBILL installation: a connected transport, the code table and the run's id lists."""

    def __init__(self, settings: SourceSettings, transport: HttpTransport) -> None:
        super().__init__(settings, transport)
        options = settings.options
        self.codes = CodeTable(options.get("codes"))
        self.batch = parse_version(options.get("version", "2.0.9")) >= FIRST_BATCH_VERSION
        self.batch_items = count_option(options, "batch_items", 2000, minimum=1)
        self.item_retries = count_option(options, "item_retries", 3, minimum=0)
        self.core: MikrobillTransport | None = None
        self._lists: dict[str, array] = {}
        self._list_locks: dict[str, asyncio.Lock] = {}
        self._single_slots = asyncio.Semaphore(settings.concurrency)

    async def open(self) -> None:
        """Connect (cashier + CRYPTO keys); a refusal is fatal here, before any stream starts."""
        self.core = make_transport(self.transport, self.settings, self.codes)
        await self.transport.call(self.core.connect, what="connect")
        self.transport.on_session_expired = self.core.reconnect
        if not self.batch:
            log.warning("MikroBILL older than 2.0.9: no batch commands, one Process call per property")

    async def close(self) -> None:
        """``Close()`` the session."""
        if self.core is not None:
            await self.core.close()

    # -- single calls -----------------------------------------------------
    async def value(self, path: str, args: Any = None) -> Any:
        """``Process(path, args)``'s ``return``, retried while busy or disconnected."""
        assert self.core is not None, "open() first"
        core = self.core

        async def attempt() -> Any:
            return self.codes.value(await core.process(path, args), path)

        return await self.transport.call(attempt, what=path)

    async def listed_ids(self, path: str) -> array:
        """The ids a listing function returns (``API.GetClients``...), fetched once per client object."""
        lock = self._list_locks.setdefault(path, asyncio.Lock())
        async with lock:
            if path not in self._lists:
                self._lists[path] = parse_ids(await self.value(path), path)
        return self._lists[path]

    def cached_ids(self, path: str) -> array | None:
        """The listing if it was already fetched (lets a stream predict its next cursor)."""
        return self._lists.get(path)

    # -- many reads ---------------------------------------------------------
    async def read(self, base: str, paths: Sequence[str]) -> ReadResult:
        """Read ``base.<path>`` for every path: batched from 2.0.9, one call per path before."""
        outcomes: list[Outcome | None] = [None] * len(paths)
        pending = list(range(len(paths)))
        calls = 0
        for round_number in range(self.item_retries + 1):
            if round_number:
                await asyncio.sleep(min(self.settings.backoff_initial * 2**round_number, self.settings.backoff_max))
            pending, used = await self._read_round(base, paths, pending, outcomes)
            calls += used
            if not pending:
                return ReadResult([outcome for outcome in outcomes if outcome is not None], calls)
        raise StillBusy(f"{base}: {len(pending)} of {len(paths)} batch items still busy after {calls} calls")

    async def _read_round(
        self, base: str, paths: Sequence[str], pending: list[int], outcomes: list[Outcome | None]
    ) -> tuple[list[int], int]:
        """Ask for the pending paths once; returns those answered "busy" and the calls spent."""
        busy: list[int] = []
        calls = 0
        chunks = self._chunks(pending)
        while chunks:
            chunk = chunks.pop(0)
            calls += 1 if self.batch else len(chunk)
            try:
                answers = await self._answers(base, [paths[i] for i in chunk])
            except BatchTooLarge:
                if len(chunk) == 1:
                    raise
                # The core's batch limit is [U]: learn it by halving, once per run rather than once per page.
                half = len(chunk) // 2
                self.batch_items = min(self.batch_items, half)
                log.warning("MikroBILL refused a batch as too large; splitting", batch_items=self.batch_items)
                chunks[:0] = [chunk[:half], chunk[half:]]
                continue
            for index, answer in zip(chunk, answers, strict=True):
                outcomes[index] = self._judge(answer, f"{base}.{paths[index]}")
                if outcomes[index] is None:
                    busy.append(index)
        return busy, calls

    def _chunks(self, indexes: list[int]) -> list[list[int]]:
        size = self.batch_items if self.batch else len(indexes) or 1
        return [indexes[start : start + size] for start in range(0, len(indexes), size)]

    def _judge(self, answer: Mapping[str, Any], path: str) -> Outcome | None:
        """An item's outcome; ``None`` when it was busy and should be asked again."""
        code = answer["code"]
        if code == 0 and not isinstance(code, bool):
            return Outcome(answer.get("return"))
        category = self.codes.category(code) if isinstance(code, int) else None
        if category == "busy":
            return None
        if category == "not_found":
            reason = answer.get("return")
            return Outcome(missing=reason if isinstance(reason, str) else f"not found (code {code})")
        raise self.codes.error(code, answer.get("return"), path)

    async def _answers(self, base: str, paths: list[str]) -> list[Mapping[str, Any]]:
        if not self.batch:
            return list(await asyncio.gather(*(self._single(f"{base}.{path}") for path in paths)))
        return await self._batch(base, paths)

    async def _batch(self, base: str, paths: list[str]) -> list[Mapping[str, Any]]:
        assert self.core is not None, "open() first"
        core = self.core

        async def attempt() -> list[Mapping[str, Any]]:
            answer = await core.process(base, paths)
            if isinstance(answer, Mapping):
                # The whole call was refused (busy, batch unsupported...): one envelope, not a list.
                if self.codes.category(answer.get("code")) == "too_large":
                    raise BatchTooLarge(f"{base}: batch of {len(paths)} paths refused as too large")
                self.codes.value(answer, base)
                raise ProtocolError(f"{base}: a batch of {len(paths)} paths answered one envelope with code 0")
            return _align(answer, base, paths)

        return await self.transport.call(attempt, what=f"{base} batch of {len(paths)}")

    async def _single(self, path: str) -> Mapping[str, Any]:
        """One non-batch read as an item answer; "not found" comes back, busy is retried, the rest raises."""
        assert self.core is not None, "open() first"
        core = self.core

        async def attempt() -> Mapping[str, Any]:
            answer = await core.process(path)
            if isinstance(answer, Mapping) and "code" in answer and self.codes.category(answer["code"]) == "not_found":
                return answer
            return {"return": self.codes.value(answer, path), "code": 0}

        async with self._single_slots:
            return await self.transport.call(attempt, what=path)


def _align(answer: Any, base: str, paths: list[str]) -> list[Mapping[str, Any]]:
    """Batch answers in the order of ``paths``: by each item's ``path`` when given, else by position ([I])."""
    if not isinstance(answer, list) or len(answer) != len(paths):
        got = f"{len(answer)} items" if isinstance(answer, list) else type(answer).__name__
        raise ProtocolError(f"{base}: a batch of {len(paths)} paths answered {got}")
    if not all(isinstance(item, Mapping) and "code" in item for item in answer):
        raise ProtocolError(f"{base}: a batch answer item is not a {{return, code, path}} object")
    by_path = {item["path"]: item for item in answer if isinstance(item.get("path"), str)}
    if len(by_path) != len(paths):
        return answer
    try:
        return [by_path[f"{base}.{path}"] for path in paths]
    except KeyError as missing:
        raise ProtocolError(f"{base}: the batch answered for a path not asked: {missing.args[0]}") from None
