"""What every command handler shares: its context, its failure, arguments, rendering, the change feed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from etl.simulators.microbizz import resume
from etl.simulators.microbizz.fields import future_fields, merge_input, render
from etl.simulators.microbizz.state import MicrobizzState
from etl.simulators.microbizz.store import Row, Table
from etl.simulators.microbizz.types import (
    BadValue,
    parse_date,
    parse_number,
    parse_string,
    parse_time,
    since_test,
    stamp,
)


class CommandError(Exception):
    """A command failed; its ``msg`` goes into that command's ``{"status":0,"msg":…}`` result."""


@dataclass
class Context:
    """One envelope being executed: the tenant and when the envelope was received."""

    state: MicrobizzState
    received: int
    objects: int = 0  # objects answered so far, for the slow-large-query latency

    def table(self, name: str) -> Table:
        """The tenant's table ``name``."""
        return self.state.tables[name]


def required_number(args: dict[str, Any], name: str) -> int:
    """Argument ``name`` as a number; missing or malformed fails the command."""
    if args.get(name) in (None, ""):
        raise CommandError(f"{name} missing")
    try:
        return parse_number(args[name], name)
    except BadValue as exc:
        raise CommandError(str(exc)) from None


def required_text(args: dict[str, Any], name: str) -> str:
    """Argument ``name`` as non-empty text; missing or empty fails the command."""
    value = args.get(name)
    text = parse_string(value, name).strip() if isinstance(value, str | int) else ""
    if not text:
        raise CommandError(f"{name} missing")
    return text


def required_set(args: dict[str, Any], name: str) -> dict[str, Any]:
    """Argument ``name`` as a set (JSON object)."""
    value = args.get(name)
    if not isinstance(value, dict):
        raise CommandError(f"{name} missing or not a set")
    return value


def merged(entity: str, current: Row | None, payload: dict[str, Any]) -> Row:
    """:func:`merge_input` with its type errors turned into a command failure."""
    try:
        return merge_input(entity, current, payload)
    except BadValue as exc:
        raise CommandError(str(exc)) from None


def render_object(ctx: Context, table_name: str, record_id: int, row: Row) -> dict[str, Any]:
    """A record as the API writes it, with a deterministic share of not-yet-known fields."""
    state = ctx.state
    changed = stamp(ctx.table(table_name).changed(record_id), state.zone)
    out = render(table_name, record_id, row, changed)
    out.update(future_fields(state.seed, table_name, record_id, state.options.extra_field_rate))
    ctx.objects += 1
    return out


def record_list(ctx: Context, table_name: str, record_id: int | None) -> list[dict[str, Any]]:
    """The get-by-id answer: a collection of exactly one object, or empty when not found."""
    row = ctx.table(table_name).get(record_id) if record_id is not None else None
    return [render_object(ctx, table_name, record_id, row)] if row is not None and record_id is not None else []


def since_of(ctx: Context, args: dict[str, Any]) -> tuple[int, Callable[[int], bool] | None]:
    """The lower bound ``changedate``/``changetime`` name, and the exact test of a change moment."""
    if args.get("changedate") in (None, ""):
        raise CommandError("changedate missing")
    try:
        day = parse_date(args["changedate"], "changedate")
        at = parse_time(args["changetime"], "changetime") if args.get("changetime") not in (None, "") else None
    except BadValue as exc:
        raise CommandError(str(exc)) from None
    options = ctx.state.options
    return since_test(
        day, at, ctx.state.zone, strict=options.changetime_strictly_after, wallclock=options.wallclock_filter
    )


def change_feed(
    ctx: Context,
    args: dict[str, Any],
    table_name: str,
    *,
    since: int,
    limit: int,
    keep: Callable[[Row], bool] | None = None,
    admit: Callable[[int], bool] | None = None,
    flags: str = "",
    render_row: Callable[[int, Row], dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One chunk of a change-ordered sequence and the resumekey that continues it (None on the last).

    Without a resumekey a new sequence starts, pinned to this envelope's receipt; with one,
    the key must come from the same command with the same ``since`` and filter flags.
    """
    state = ctx.state
    key = args.get("resumekey")
    snapshot, after = ctx.received, None
    if key not in (None, ""):
        try:
            point = resume.decode(key, state.secret)
        except resume.BadResumeKey as exc:
            raise CommandError(str(exc)) from None
        if point.entity != table_name:
            raise CommandError("resumekey belongs to another command")
        if point.flags != flags:
            raise CommandError("resumekey was issued for other filters (e.g. ignoreclosed)")
        if point.since != since:
            raise CommandError("resumekey does not match changedate/changetime")
        lifetime = state.options.resumekey_lifetime_seconds
        if lifetime is not None and ctx.received - point.snapshot > lifetime * 1_000_000:
            raise CommandError(state.options.resumekey_expired_msg)
        snapshot, after = point.snapshot, point.after
    served, more = ctx.table(table_name).chunk(since, snapshot, after, limit, keep, admit)
    draw = render_row or (lambda record_id, row: render_object(ctx, table_name, record_id, row))
    objects = [draw(record_id, row) for (_, record_id), row in served]
    next_key = None
    if more:
        next_key = resume.encode(resume.ResumePoint(table_name, since, snapshot, served[-1][0], flags), state.secret)
    return objects, next_key


def by_last_change(
    ctx: Context,
    args: dict[str, Any],
    table_name: str,
    output: str,
    **feed: Any,
) -> dict[str, Any]:
    """The whole ``…ByLastChange`` answer: ``{output: [...]}`` plus ``resumekey`` when more follow."""
    since, admit = since_of(ctx, args)
    objects, next_key = change_feed(
        ctx, args, table_name, since=since, admit=admit, limit=ctx.state.options.chunk_size, **feed
    )
    result: dict[str, Any] = {output: objects}
    if next_key:
        result["resumekey"] = next_key
    return result


def write_time(ctx: Context) -> int:
    """When a write in this envelope happens: now, never before the envelope arrived."""
    return max(ctx.state.now(), ctx.received)


def create_update_by_id(ctx: Context, args: dict[str, Any], table_name: str, arg: str) -> dict[str, Any]:
    """``id`` 0 creates; any other id merges into that record, which must exist [guess: else status 0]."""
    payload = required_set(args, arg)
    try:
        record_id = parse_number(payload.get("id") or 0, "id")
    except BadValue as exc:
        raise CommandError(str(exc)) from None
    table = ctx.table(table_name)
    if record_id == 0:
        row = merged(table_name, None, payload)
        record_id = table.create(row, write_time(ctx))
    else:
        current = table.get(record_id)
        if current is None:
            raise CommandError(f"{table_name} {record_id} not found")
        row = merged(table_name, current, payload)
        table.put(record_id, row, write_time(ctx))
    return {arg: render_object(ctx, table_name, record_id, row)}


def create_update_by_number(
    ctx: Context, args: dict[str, Any], table_name: str, arg: str, number_field: str
) -> dict[str, Any]:
    """Keyed on the number field (the input id is ignored); creates when no record has that number.

    A missing number fails. With duplicate numbers the lowest id is overwritten (the docs
    say "one unpredictable match").
    """
    payload = required_set(args, arg)
    number = required_text(payload, number_field)
    table = ctx.table(table_name)
    record_id = table.find_number(number)
    current = table.get(record_id) if record_id is not None else None
    row = merged(table_name, current, {**payload, number_field: number})
    if record_id is None or current is None:
        record_id = table.create(row, write_time(ctx))
    else:
        table.put(record_id, row, write_time(ctx))
    return {arg: render_object(ctx, table_name, record_id, row)}
