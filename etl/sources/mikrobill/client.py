"""MikroBILL client: ``Process`` calls through the transport seam, batch reads, error classification.

Efficiency is the point of this module. MikroBILL has no "list clients with their
fields" call; a naive reader makes one ``Process`` per property per client. Instead:

- ``API.GetClients`` is called once per run; the sorted id list is kept on the client
  (8 bytes per id) and every client-paged stream slices it.
- From 2.0.9 a batch command reads many properties in one call
  (``Process("API.Client", ["<id>.AutorizeInfo.Name", "<id>.BillingInfo.Money", ...])``,
  protocols.md §2.3); :meth:`MikrobillClient.read` splits a page's paths into batches of
  ``options.batch_items`` (default 2000; the core's real limit is [U], so a batch the
  core refuses as too large is halved and the smaller size kept for the rest of the run).
- Each batch item carries its own code. Items answered "busy" are asked again, alone:
  each ask is one attempt of the same call under the source's retry policy, so a page
  costs at most ``max_attempts`` calls per batch, never attempts times rounds. Items
  answered "not found" become a per-record problem (the stream rejects that record with
  the reason); any other failing code fails the call as :mod:`~etl.sources.mikrobill.codes` says.
- Below 2.0.9 (``options.version``) the core refuses batches, so the same reads fall
  back to one ``Process`` per property (bounded by ``concurrency``): correct, but about
  ``page_size * properties`` calls per page instead of one or two.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from etl.http.errors import ProtocolError, SourceBusy, Verdict, fail, ok, retry
from etl.settings import SourceSettings
from etl.sources.base import SourceClient
from etl.sources.mikrobill.codes import BatchTooLarge, CodeTable
from etl.sources.mikrobill.config import MikrobillOptions, SettingsProblem, settings_problems
from etl.sources.mikrobill.transport import MikrobillTransport, make_transport

if TYPE_CHECKING:
    from etl.http.transport import HttpTransport

log = structlog.get_logger(__name__)
FIRST_BATCH_VERSION = (2, 0, 9)
# Which read paths may be refused as unknown (guessed properties) without failing their call.
Tolerated = Callable[[str], bool] | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One read path: its value, or ``missing`` = the core's "not found" reason, or ``refused`` =
    why an optional path was refused as unknown (its value is then ``None``)."""

    value: Any = None
    missing: str | None = None
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Outcomes in the order of the paths asked, and how many ``Process`` calls it took."""

    outcomes: list[Outcome]
    calls: int


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


def judge_item(codes: CodeTable, answer: Mapping[str, Any], path: str, *, optional: bool = False) -> Outcome | Verdict:
    """A batch item's outcome, or the verdict of the whole call: retry while busy, fail on a hard code.

    An ``optional`` path refused as a bad request (a path this installation does not know)
    is an outcome too, ``refused``, instead of failing the call."""
    verdict = codes.verdict(answer, path)
    if verdict.action == "ok":
        return Outcome(verdict.value)
    category = codes.category(answer.get("code"))
    reason = answer.get("return")
    if category == "not_found":
        return Outcome(missing=reason if isinstance(reason, str) else f"not found (code {answer.get('code')})")
    if optional and category == "bad_request":
        return Outcome(refused=reason if isinstance(reason, str) else f"refused (code {answer.get('code')})")
    return verdict


class MikrobillClient(SourceClient):
    """One MikroBILL installation: a connected transport, the code table and the run's id lists."""

    def __init__(self, settings: SourceSettings, transport: HttpTransport) -> None:
        super().__init__(settings, transport)
        self.options: MikrobillOptions = settings.options
        self.codes = CodeTable(self.options.codes)
        self.batch = self.options.version_tuple() >= FIRST_BATCH_VERSION
        self.batch_items = self.options.batch_items
        self.core: MikrobillTransport | None = None
        self._lists: dict[str, array] = {}
        self._list_locks: dict[str, asyncio.Lock] = {}
        self._single_slots = asyncio.Semaphore(settings.concurrency)

    async def open(self) -> None:
        """Connect (cashier + CRYPTO keys); a refusal is fatal here, before any stream starts."""
        problems = settings_problems(self.settings.credentials, self.options)
        if problems:
            raise SettingsProblem("; ".join(problems))
        self.core = make_transport(self.transport, self.settings, self.codes)
        await self.transport.attempts(self.core.connect, what="connect", safe=True)
        if not self.batch:
            log.warning("MikroBILL older than 2.0.9: no batch commands, one Process call per property")

    async def reconnect(self) -> None:
        """A new session after the core forgot ours (the retry policy's renew step)."""
        assert self.core is not None, "open() first"
        await self.transport.attempts(self.core.connect, what="connect", safe=True)

    async def close(self) -> None:
        """``Close()`` the session."""
        if self.core is not None:
            await self.core.close()

    async def _call(self, path: str, args: Any, judge: Any, *, what: str) -> Any:
        """One ``Process`` under the retry policy; ``judge`` turns what it returned into a verdict."""
        assert self.core is not None, "open() first"
        core = self.core

        async def attempt() -> Verdict:
            answered = await core.process(path, args)
            return judge(answered.value) if answered.action == "ok" else answered

        return await self.transport.attempts(attempt, what=what, safe=True, renew=self.reconnect)

    async def value(self, path: str, args: Any = None) -> Any:
        """``Process(path, args)``'s ``return``."""
        return await self._call(path, args, lambda envelope: self.codes.verdict(envelope, path), what=path)

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
    async def read(self, base: str, paths: Sequence[str], optional: Tolerated = None) -> ReadResult:
        """Read ``base.<path>`` for every path: batched from 2.0.9, one call per path before.

        ``optional(path)`` says which paths may be refused as unknown without failing the call."""
        if not self.batch:
            calls = (self._single(f"{base}.{path}", bool(optional and optional(path))) for path in paths)
            results = await asyncio.gather(*calls)
            return ReadResult(list(results), len(paths))
        outcomes: list[Outcome] = []
        calls = 0
        chunks = [list(paths[start : start + self.batch_items]) for start in range(0, len(paths), self.batch_items)]
        while chunks:
            chunk = chunks.pop(0)
            try:
                answered, used = await self._batch(base, chunk, optional)
            except BatchTooLarge:
                if len(chunk) == 1:
                    raise
                # The core's batch limit is [U]: learn it by halving, once per run rather than once per page.
                half = len(chunk) // 2
                self.batch_items = min(self.batch_items, half)
                log.warning("MikroBILL refused a batch as too large; splitting", batch_items=self.batch_items)
                chunks[:0] = [chunk[:half], chunk[half:]]
                calls += 1
                continue
            outcomes += answered
            calls += used
        return ReadResult(outcomes, calls)

    async def _batch(self, base: str, paths: list[str], optional: Tolerated = None) -> tuple[list[Outcome], int]:
        """One batch call; items answered "busy" are asked again (alone) as the next attempt."""
        outcomes: list[Outcome | None] = [None] * len(paths)
        pending = list(range(len(paths)))
        calls = 0

        def judge(answer: Any) -> Verdict:
            nonlocal pending
            asked = [paths[i] for i in pending]
            if isinstance(answer, Mapping):
                # The whole call was refused (busy, too large...): one envelope, not a list.
                verdict = self.codes.verdict(answer, base)
                if self.codes.category(answer.get("code")) == "too_large":
                    return fail(BatchTooLarge, f"{base}: batch of {len(asked)} paths refused as too large")
                if verdict.action == "ok":
                    return fail(ProtocolError, f"{base}: a batch of {len(asked)} paths answered one envelope")
                return verdict
            busy = []
            for index, item in zip(pending, _align(answer, base, asked), strict=True):
                tolerated = bool(optional and optional(paths[index]))
                judged = judge_item(self.codes, item, f"{base}.{paths[index]}", optional=tolerated)
                if isinstance(judged, Verdict):
                    if judged.action != "retry":
                        return judged
                    busy.append(index)
                else:
                    outcomes[index] = judged
            pending = busy
            if busy:
                return retry(SourceBusy, f"{base}: {len(busy)} of {len(paths)} batch items busy", without_effect=True)
            return ok()

        assert self.core is not None, "open() first"
        core = self.core

        async def attempt() -> Verdict:
            nonlocal calls
            calls += 1  # every call sent counts, answered or not
            answered = await core.process(base, [paths[i] for i in pending])
            return judge(answered.value) if answered.action == "ok" else answered

        await self.transport.attempts(attempt, what=f"{base} batch of {len(paths)}", safe=True, renew=self.reconnect)
        return [outcome for outcome in outcomes if outcome is not None], calls

    async def _single(self, path: str, optional: bool = False) -> Outcome:
        """One non-batch read; "not found" comes back as an outcome, the rest as the policy says."""

        def judge(envelope: Any) -> Verdict:
            mapping = isinstance(envelope, Mapping)
            judged = judge_item(self.codes, envelope, path, optional=optional) if mapping else None
            if judged is None:
                return self.codes.verdict(envelope, path)
            return ok(judged) if isinstance(judged, Outcome) else judged

        async with self._single_slots:
            return await self._call(path, None, judge, what=path)


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
