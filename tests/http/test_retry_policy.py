"""RetryPolicy.run and parse_retry_after as pure code: a scripted attempt function and a recording sleep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.http.errors import (
    AuthenticationError,
    OutcomeUnknown,
    ProtocolError,
    RateLimited,
    ServerError,
    SessionExpired,
    SourceBusy,
    TransportError,
    Verdict,
    fail,
    ok,
    renew,
    retry,
)
from etl.http.retry import CallStats, RetryPolicy, parse_retry_after

SERVER_ERROR = retry(ServerError, "GET products: HTTP 502", status=502)
BUSY = retry(SourceBusy, "API.Client: busy", without_effect=True)
SENT_NO_ANSWER = retry(TransportError, "POST products: SocketTimeoutError")


class Script:
    """The caller's attempt function: answers the scripted verdicts in order, then repeats the last one."""

    def __init__(self, verdicts: Sequence[Verdict], events: list[str] | None = None) -> None:
        self.verdicts = list(verdicts)
        self.calls = 0
        self.events = events if events is not None else []

    async def __call__(self) -> Verdict:
        self.calls += 1
        self.events.append("attempt")
        return self.verdicts[min(self.calls, len(self.verdicts)) - 1]


class Sleeps:
    """A sleep that only records how long it was asked to wait."""

    def __init__(self, events: list[str] | None = None) -> None:
        self.waits: list[float] = []
        self.events = events if events is not None else []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.events.append("sleep")


def policy(attempts: int = 4, **fields: float) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, **{"backoff_initial": 0.001, "backoff_max": 0.002, **fields})


@pytest.mark.parametrize("n", [1, 3, 4])
async def test_persistent_retry_verdict_is_attempted_exactly_max_attempts_times(n: int) -> None:
    """A verdict that keeps saying "retry" is attempted exactly max_attempts times, then its error is raised."""
    attempt, sleep = Script([SERVER_ERROR]), Sleeps()
    with pytest.raises(ServerError) as raised:
        await policy(n).run(attempt, what="GET products", safe=True, sleep=sleep)
    assert attempt.calls == n
    assert len(sleep.waits) == n - 1, "one pause between each two attempts, none after the last"
    assert raised.value.status == 502
    assert (f"(after {n} attempts)" in str(raised.value)) is (n > 1)


@pytest.mark.parametrize("n", [3, 4])
async def test_fault_clearing_at_attempt_n_minus_1_returns_the_value(n: int) -> None:
    """When the answer turns ok at attempt N-1, run returns its value after exactly N-1 attempts."""
    attempt, sleep = Script([SERVER_ERROR] * (n - 2) + [ok(["page"])]), Sleeps()
    assert await policy(n).run(attempt, what="GET products", safe=True, sleep=sleep) == ["page"]
    assert attempt.calls == n - 1 and len(sleep.waits) == n - 2


async def test_renew_runs_between_attempts_without_a_pause() -> None:
    """A renew verdict calls the renew function before the next attempt, and does not sleep."""
    events: list[str] = []
    attempt, sleep = Script([renew("session expired"), renew("session expired"), ok("doc")], events), Sleeps(events)

    async def log_in_again() -> None:
        events.append("renew")

    result = await policy(5).run(attempt, what="account", safe=True, renew=log_in_again, sleep=sleep)
    assert result == "doc"
    assert events == ["attempt", "renew", "attempt", "renew", "attempt"]


async def test_renew_verdict_without_a_renew_function_fails_at_once() -> None:
    """A renew verdict on a call that cannot renew raises its error after one attempt."""
    attempt = Script([renew("session expired")])
    with pytest.raises(SessionExpired):
        await policy(5).run(attempt, what="account", safe=True, sleep=Sleeps())
    assert attempt.calls == 1


async def test_persistent_renew_stops_at_max_attempts() -> None:
    """A session that is refused after every renewal costs max_attempts attempts and max_attempts-1 renewals."""
    renewals = 0

    async def log_in_again() -> None:
        nonlocal renewals
        renewals += 1

    attempt = Script([renew("session expired")])
    with pytest.raises(SessionExpired, match=r"after 4 attempts"):
        await policy(4).run(attempt, what="account", safe=True, renew=log_in_again, sleep=Sleeps())
    assert attempt.calls == 4 and renewals == 3


async def test_unsafe_call_with_possible_effect_raises_outcome_unknown_after_one_attempt() -> None:
    """A call not safe to repeat whose answer may have had an effect is never sent again: OutcomeUnknown at once."""
    for verdict in (SENT_NO_ANSWER, SERVER_ERROR):
        attempt, sleep = Script([verdict, ok(7)]), Sleeps()
        with pytest.raises(OutcomeUnknown, match="look the object up"):
            await policy(5).run(attempt, what="POST products", safe=False, sleep=sleep)
        assert attempt.calls == 1 and sleep.waits == []


async def test_unsafe_call_refused_without_effect_is_retried() -> None:
    """A call not safe to repeat is sent again when the server refused it without acting (429, busy)."""
    refused = retry(RateLimited, "POST products: HTTP 429", status=429, without_effect=True)
    attempt = Script([refused, BUSY, ok(42)])
    assert await policy(5).run(attempt, what="POST products", safe=False, sleep=Sleeps()) == 42
    assert attempt.calls == 3


async def test_retry_after_is_honoured() -> None:
    """The pause after an answer carrying Retry-After is exactly that many seconds, not the backoff."""
    sleep = Sleeps()
    attempt = Script([SERVER_ERROR.but(retry_after=1.5), ok()])
    await policy(3, retry_after_max=120).run(attempt, what="x", safe=True, sleep=sleep)
    assert sleep.waits == [1.5]


async def test_retry_after_is_capped_at_retry_after_max() -> None:
    """A Retry-After longer than retry_after_max is cut to retry_after_max."""
    sleep = Sleeps()
    attempt = Script([SERVER_ERROR.but(retry_after=3600), ok()])
    await policy(3, retry_after_max=0.2).run(attempt, what="x", safe=True, sleep=sleep)
    assert sleep.waits == [0.2]


async def test_backoff_without_retry_after_is_full_jitter_below_the_exponential_ceiling() -> None:
    """Without Retry-After pause k lies in [0, min(backoff_max, backoff_initial * 2**(k-1))]."""
    sleep = Sleeps()
    rules = RetryPolicy(max_attempts=8, backoff_initial=1.0, backoff_max=10.0)
    with pytest.raises(ServerError):
        await rules.run(Script([SERVER_ERROR]), what="x", safe=True, sleep=sleep)
    ceilings = [1, 2, 4, 8, 10, 10, 10]
    assert len(sleep.waits) == len(ceilings)
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(sleep.waits, ceilings, strict=True))


async def test_call_budget_stops_retries_before_a_pause_that_would_overrun_it() -> None:
    """A pause that would take the call past call_budget is not taken: the error is raised instead."""
    attempt, sleep = Script([SERVER_ERROR.but(retry_after=10)]), Sleeps()
    with pytest.raises(ServerError, match=r"retry budget of 1 s used up after 1 attempts"):
        await policy(8, call_budget=1.0).run(attempt, what="x", safe=True, sleep=sleep)
    assert attempt.calls == 1 and sleep.waits == []


async def test_verdict_cap_counts_only_answers_of_its_own_kind() -> None:
    """A verdict's max_attempts caps answers of its kind; other kinds in between do not use it up."""
    refused_key = retry(AuthenticationError, "HTTP 401", status=401, without_effect=True, max_attempts=2)
    attempt = Script([SERVER_ERROR, refused_key, SERVER_ERROR, refused_key, ok()])
    with pytest.raises(AuthenticationError, match=r"after 4 attempts"):
        await policy(10).run(attempt, what="GET products", safe=True, sleep=Sleeps())
    assert attempt.calls == 4, "the second 401 is the cap, though it is the fourth attempt"


async def test_verdict_cap_below_the_policy_limit_ends_the_call_early() -> None:
    """A persistent verdict capped at 2 costs 2 attempts under a policy that allows 10."""
    attempt = Script([retry(AuthenticationError, "HTTP 401", max_attempts=2)])
    with pytest.raises(AuthenticationError):
        await policy(10).run(attempt, what="x", safe=True, sleep=Sleeps())
    assert attempt.calls == 2


async def test_accept_when_exhausted_returns_the_value_when_attempts_run_out() -> None:
    """A confirmation verdict (accept_when_exhausted) still so after its cap returns its value instead of raising."""
    none_found = retry(ProtocolError, "HTTP 404 No product found", value=[], accept_when_exhausted=True, max_attempts=3)
    attempt = Script([none_found])
    assert await policy(10).run(attempt, what="GET products", safe=True, sleep=Sleeps()) == []
    assert attempt.calls == 3


async def test_final_answers_end_the_call_at_once() -> None:
    """ok returns its value, ignore returns None and fail raises its error, each after one attempt."""
    assert await policy().run(Script([ok({"id": 1})]), what="x", safe=True, sleep=Sleeps()) == {"id": 1}
    assert await policy().run(Script([Verdict("ignore", value="dropped")]), what="x", safe=True) is None
    attempt = Script([fail(AuthenticationError, "HTTP 401", status=401)])
    with pytest.raises(AuthenticationError):
        await policy().run(attempt, what="x", safe=False, sleep=Sleeps())
    assert attempt.calls == 1


async def test_stats_count_every_retry_by_kind() -> None:
    """CallStats counts one retry per pause or renewal, by the kind of answer that caused it."""
    stats = CallStats()

    async def nothing() -> None:
        return None

    attempt = Script([SERVER_ERROR, BUSY, renew("expired"), SERVER_ERROR, ok()])
    await policy(8).run(attempt, what="x", safe=True, renew=nothing, stats=stats, sleep=Sleeps())
    assert stats.retries == 4
    assert stats.retry_kinds == {"server_error": 2, "busy": 1, "session_expired": 1}


# -- property: attempts never exceed max_attempts ------------------------------------------------

ERRORS = st.sampled_from([ServerError, SourceBusy, AuthenticationError, ProtocolError, TransportError])
VERDICTS = st.one_of(
    st.builds(
        lambda error, cap, refused, accept: retry(
            error, "r", max_attempts=cap, without_effect=refused, accept_when_exhausted=accept
        ),
        ERRORS,
        st.none() | st.integers(1, 6),
        st.booleans(),
        st.booleans(),
    ),
    st.builds(lambda cap: renew("expired").but(max_attempts=cap), st.none() | st.integers(1, 6)),
    st.just(ok("done")),
    st.just(fail(ProtocolError, "f")),
)


@settings(max_examples=300, deadline=None)
@given(
    verdicts=st.lists(VERDICTS, min_size=1, max_size=12),
    attempts=st.integers(1, 8),
    safe=st.booleans(),
    renewable=st.booleans(),
)
async def test_attempts_never_exceed_max_attempts(
    verdicts: list[Verdict], attempts: int, safe: bool, renewable: bool
) -> None:
    """Whatever the attempts answer, run makes at most max_attempts attempts and ends with a value or a SourceError."""
    attempt = Script(verdicts)

    async def nothing() -> None:
        return None

    try:
        await policy(attempts).run(attempt, what="x", safe=safe, renew=nothing if renewable else None, sleep=Sleeps())
    except (ServerError, SourceBusy, AuthenticationError, ProtocolError, TransportError, SessionExpired):
        pass
    except OutcomeUnknown:
        assert not safe
    assert 1 <= attempt.calls <= attempts


@settings(max_examples=100, deadline=None)
@given(kinds=st.lists(ERRORS, min_size=1, max_size=10), attempts=st.integers(1, 8))
async def test_uncapped_retries_of_a_safe_call_use_all_attempts(kinds: list[type], attempts: int) -> None:
    """A safe call whose every answer is an uncapped retry is attempted exactly max_attempts times."""
    attempt = Script([retry(kind, "r") for kind in kinds])
    with pytest.raises(tuple(kinds)):
        await policy(attempts).run(attempt, what="x", safe=True, sleep=Sleeps())
    assert attempt.calls == attempts


# -- parse_retry_after ------------------------------------------------------------------------------

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 09:28:00 +0200", 0.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        (format_datetime(NOW + timedelta(minutes=2), usegmt=True), 120.0),
    ],
    ids=["seconds", "padded", "zero", "fraction", "date", "date-offset", "date-past", "date-formatted"],
)
def test_retry_after_values_in_seconds_and_http_dates(header: str, seconds: float) -> None:
    """Delta-seconds are read as seconds; an HTTP-date is the time until it (never negative) from ``now``."""
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "soon",
        "-5",
        "-0.5",
        "nan",
        "inf",
        "Wed, 32 Foo 2015 07:28:00 GMT",
        "\u00b2",  # a superscript two: str.isdigit() says yes, float() says no
    ],
    ids=["absent", "empty", "blank", "word", "negative", "negative-fraction", "nan", "inf", "bad-date", "superscript"],
)
def test_unusable_retry_after_is_none(header: str | None) -> None:
    """Garbage, negative and non-finite Retry-After values are ignored (None), never an error."""
    assert parse_retry_after(header, now=NOW) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_retry_after_is_none_or_a_finite_wait(header: str) -> None:
    """Any header value parses to None or a finite, non-negative number of seconds."""
    seconds = parse_retry_after(header, now=NOW)
    assert seconds is None or 0 <= seconds < float("inf")
