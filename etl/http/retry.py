"""The one retry authority: a policy and the loop that executes it over verdicts.

Clients never sleep or count attempts. A call is an *attempt* (one request, judged by the
client's pure classifier into a :class:`~etl.http.errors.Verdict`) plus whether repeating
it is safe. :meth:`RetryPolicy.run` repeats the attempt as the verdicts say:

- ``retry``: pause (full-jitter exponential backoff, or the server's Retry-After, capped),
  then again, until the policy's attempts, the verdict's own cap or the call's time budget
  is used up; then the verdict's error is raised.
- ``renew``: call the client's renew method (log in again), then again without a pause.
- a call **not safe to repeat** (a create, an add-line) is repeated only on a verdict that
  says the server refused it without effect (429, 503 with Retry-After, busy, a refused
  session, a connection never made). Any other retryable verdict (a timeout or reset after
  sending, a 500) raises :class:`~etl.http.errors.OutcomeUnknown`: the caller must look
  the object up, never send it again blindly.

The HTTP method decides nothing: BILLmanager, Microbizz and the MikroBILL stand-in read
with POST. No aiohttp here.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import structlog

from etl.http.errors import OutcomeUnknown, Verdict

log = structlog.get_logger(__name__)
Attempt = Callable[[], Awaitable[Verdict]]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date; ``None`` if unusable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class CallStats:
    """What happened on the wire, for progress displays and run counts."""

    requests: int = 0
    retries: int = 0
    retry_kinds: dict[str, int] = field(default_factory=dict)

    def retried(self, kind: str) -> None:
        self.retries += 1
        self.retry_kinds[kind] = self.retry_kinds.get(kind, 0) + 1


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one source's calls are tried. Built from the source's settings."""

    max_attempts: int = 8
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    call_budget: float = 900.0  # seconds one call may spend on all its attempts and pauses

    def pause(self, attempt: int, verdict: Verdict) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if verdict.retry_after is not None:
            return min(verdict.retry_after, self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)

    def exhausted(self, number: int, same_kind: int, verdict: Verdict) -> bool:
        """Whether attempt ``number`` was the last: the policy's limit, or the verdict's own cap on
        answers of its kind (``same_kind`` of them so far)."""
        return number >= self.max_attempts or (verdict.max_attempts is not None and same_kind >= verdict.max_attempts)

    async def run(
        self,
        attempt: Attempt,
        *,
        what: str,
        safe: bool,
        renew: Callable[[], Awaitable[None]] | None = None,
        stats: CallStats | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> Any:
        """Repeat ``attempt`` as its verdicts say; the result of the first ``ok``, or the error."""
        started = time.monotonic()
        number = 0
        kinds: dict[str, int] = {}
        while True:
            number += 1
            verdict = await attempt()
            if verdict.action in ("ok", "ignore"):
                return verdict.value if verdict.action == "ok" else None
            if verdict.action == "fail" or (verdict.action == "renew" and renew is None):
                raise verdict.exception()
            if not safe and not verdict.without_effect:
                raise OutcomeUnknown(
                    f"{what}: {verdict.message or verdict.kind}; the call is not safe to repeat and the server "
                    "may have acted on it: look the object up before trying again",
                    status=verdict.status,
                )
            kinds[verdict.kind] = kinds.get(verdict.kind, 0) + 1
            if self.exhausted(number, kinds[verdict.kind], verdict):
                if verdict.accept_when_exhausted:
                    return verdict.value
                raise verdict.exception(f" (after {number} attempts)" if number > 1 else "")
            wait = 0.0 if verdict.action == "renew" else self.pause(number, verdict)
            if time.monotonic() - started + wait > self.call_budget:
                raise verdict.exception(f" (retry budget of {self.call_budget:g} s used up after {number} attempts)")
            if stats is not None:
                stats.retried(verdict.kind)
            log.warning("retrying", call=what, attempt=number, kind=verdict.kind, error=verdict.message, wait=wait)
            if verdict.action == "renew":
                assert renew is not None
                await renew()
            else:
                await sleep(wait)
