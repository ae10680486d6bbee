"""Switches of the Microbizz simulator and the demo credentials.

Every switch that settles a behaviour protocols.md tags [I] or [U] says so
with "[guess]": the vendor documents the envelope and the commands, not the
error texts, the HTTP status of errors, the chunk size or the object field names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

DEMO_CREDENTIALS: dict[str, str] = {
    "contract": "2391",
    "apikey": "demo-microbizz-key",
    "username": "etl",
    "password": "demo-microbizz-pass",
}


def system_clock() -> datetime:
    """The real time, timezone-aware."""
    return datetime.now(UTC)


@dataclass
class MicrobizzOptions:
    """What the simulated tenant looks like and how it answers where the docs are silent.

    - ``contract``/``apikey``/``username``/``password``: the four identifying values.
    - ``access_tokens``: app-connect tokens accepted instead of apikey/username/password.
    - ``chunk_size``: most objects per ``…ByLastChange`` answer before a ``resumekey`` [guess: 500].
    - ``pending_chunk_size``: ``GetPendingInvoiceLines`` has no documented resumekey; ``None``
      answers every pending line at once, a number chunks it like the sync commands [guess].
    - ``halt_emits_skipped``: with ``haltonerror=1``, commands after the failing one are left
      out of ``results`` (False, the default) or answered ``status 0`` (True) [guess].
    - ``error_http_status``: HTTP status of envelope-level failures (bad JSON, bad credentials,
      busy) [guess: 200, the body carries the failure].
    - ``timezone``: zone of every date/time the API reads and writes; a Danish service is
      assumed to speak Copenhagen local time [guess].
    - ``changetime_strictly_after``: ``…ByLastChange`` serves records changed strictly after
      ``changetime``, at the second (True, the default: "changed after the provided date and
      time" [C]); False serves "at or after". ``changedate`` alone is always "on or after".
    - ``wallclock_filter``: compare change times as local date/time without zone, the way a
      server storing local DATETIME columns does (True, the default [guess]): a change in the
      second pass of the repeated autumn DST hour then reads as *earlier* than a watermark
      taken in the first pass. False compares absolute moments.
    - ``resumekey_lifetime_seconds``: a resumekey older than this (since its sequence's first
      chunk) is refused at command level [guess: None, keys never expire].
    - ``resumekey_expired_msg``: the ``msg`` of that refusal; its wording is [U], so tests vary it
      to show a client does not depend on it.
    - ``extra_field_rate``: share of objects, results and envelopes that carry fields a client
      does not know yet (the docs promise new fields may appear) [guess: 0.1].
    - ``slow_seconds_per_object``: latency added per object answered, the "large queries
      take time" warning of the docs [guess: off].
    - ``user_count``: employees in the tenant.
    - ``todos_key``: output key of ``GetTodosByLastChange`` [guess: "todos"].
    - ``todo_close_states``: ``stateid`` values ``CloseTodoByID`` accepts [guess].
    - ``clock``: the server's clock (aware datetimes); tests inject their own.
    """

    contract: int = int(DEMO_CREDENTIALS["contract"])
    apikey: str = DEMO_CREDENTIALS["apikey"]
    username: str = DEMO_CREDENTIALS["username"]
    password: str = DEMO_CREDENTIALS["password"]
    access_tokens: tuple[str, ...] = ()
    chunk_size: int = 500
    pending_chunk_size: int | None = None
    halt_emits_skipped: bool = False
    error_http_status: int = 200
    timezone: str = "Europe/Copenhagen"
    changetime_strictly_after: bool = True
    wallclock_filter: bool = True
    resumekey_lifetime_seconds: float | None = None
    resumekey_expired_msg: str = "Session data expired, please start over"
    extra_field_rate: float = 0.1
    slow_seconds_per_object: float = 0.0
    user_count: int = 36
    todos_key: str = "todos"
    todo_close_states: tuple[int, ...] = (3, 4)
    clock: Callable[[], datetime] = system_clock

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        if self.pending_chunk_size is not None and self.pending_chunk_size < 1:
            raise ValueError("pending_chunk_size must be at least 1 or None")
        if not 0.0 <= self.extra_field_rate <= 1.0:
            raise ValueError("extra_field_rate must lie between 0 and 1")
        if self.resumekey_lifetime_seconds is not None and self.resumekey_lifetime_seconds < 0:
            raise ValueError("resumekey_lifetime_seconds must be at least 0 or None")
        ZoneInfo(self.timezone)  # fail at start, naming the bad zone, rather than on the first request

    @property
    def zone(self) -> ZoneInfo:
        """The tenant's time zone."""
        return ZoneInfo(self.timezone)
