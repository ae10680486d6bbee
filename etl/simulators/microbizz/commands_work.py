"""Todo and invoice-line commands.

``CloseTodoByID`` does not fail when the close conditions are not met: the todo
is returned still open (protocols.md §3.4 [C]). The simulator's one close
condition is ``requireanswer``: such a todo only closes with a non-empty
``answer`` [guess]. ``stateid`` must be one of the options' close states [guess].
``AddInvoiceLine`` ignores the input id and answers nothing; lines come in
unprocessed and only ``MarkInvoiceLinesAsProcessed`` processes them.
"""

from __future__ import annotations

import sys
from typing import Any

from etl.simulators.microbizz.context import (
    CommandError,
    Context,
    by_last_change,
    change_feed,
    create_update_by_id,
    merged,
    render_object,
    required_number,
    required_set,
    write_time,
)
from etl.simulators.microbizz.types import BadValue, from_micros, parse_number, parse_string


def _existing(ctx: Context, table_name: str, payload: dict[str, Any], field: str) -> None:
    """A reference in ``payload`` must name an existing record, unless it is 0/absent [guess]."""
    if payload.get(field) in (None, "", 0, "0"):
        return
    try:
        record_id = parse_number(payload[field], field)
    except BadValue as exc:
        raise CommandError(str(exc)) from None
    if ctx.table(table_name).get(record_id) is None:
        raise CommandError(f"{table_name} {record_id} not found")


def get_todos_by_last_change(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Todos changed since changedate/changetime, chunked, under the output key ``todos`` [guess]."""
    return by_last_change(ctx, args, "todo", ctx.state.options.todos_key)


def create_update_todo(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``{todo}`` with id 0 creates (numbered ``T<id>`` unless given a number); else merges.

    ``toolid``, ``changenote`` and ``sendsubcontractormail`` are accepted and have no effect here.
    """
    payload = required_set(args, "todo")
    _existing(ctx, "customer", payload, "customerid")
    _existing(ctx, "user", payload, "userid")
    if payload.get("id") in (None, "", 0, "0") and not payload.get("number"):
        args = {**args, "todo": {**payload, "number": f"T{ctx.table('todo').next_id}"}}
    return create_update_by_id(ctx, args, "todo", "todo")


def close_todo_by_id(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Closes a todo in a close state; a todo whose conditions are unmet comes back open, status 1."""
    todo_id = required_number(args, "todoid")
    state_id = required_number(args, "stateid")
    table = ctx.table("todo")
    row = table.get(todo_id)
    if row is None:
        raise CommandError(f"todo {todo_id} not found")
    if state_id not in ctx.state.options.todo_close_states:
        raise CommandError(f"stateid {state_id} is not a close state")
    answer = args.get("answer")
    answer = parse_string(answer, "answer") if isinstance(answer, str | int | float) else ""
    if not row["closed"] and not (row["requireanswer"] and not answer.strip()):
        row = dict(row)
        row.update(closed=True, stateid=state_id, answer=answer or row["answer"])
        if isinstance(args.get("note"), str) and args["note"].strip():
            row["description"] = f"{row['description']}\n{args['note']}".strip()
        table.put(todo_id, row, write_time(ctx))
    return {"todo": render_object(ctx, "todo", todo_id, row)}


def get_invoice_lines_by_last_change(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Invoice lines changed since changedate/changetime, chunked, under ``invoicelines``."""
    return by_last_change(ctx, args, "invoiceline", "invoicelines")


def get_pending_invoice_lines(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Every unprocessed, undeleted line; chunked only when ``pending_chunk_size`` is set [guess]."""
    limit = ctx.state.options.pending_chunk_size or sys.maxsize
    lines, next_key = change_feed(
        ctx,
        args,
        "invoiceline",
        since=0,
        limit=limit,
        keep=lambda row: not row["processed"] and not row["deleted"],
        flags="p",
    )
    result: dict[str, Any] = {"invoicelines": lines}
    if next_key:
        result["resumekey"] = next_key
    return result


def add_invoice_line(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Stores a new pending line for an existing customer; the input id is ignored; no output."""
    payload = required_set(args, "invoiceline")
    row = merged("invoiceline", None, payload)
    if ctx.table("customer").get(row["customerid"]) is None:
        raise CommandError(f"customer {row['customerid']} not found")
    if row["date"] is None:
        row["date"] = from_micros(ctx.received, ctx.state.zone).date()
    ctx.table("invoiceline").create(row, write_time(ctx))
    return {}


def mark_invoice_lines_as_processed(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Marks the listed lines processed (with ``ordernumber`` if given); unknown ids are ignored [guess]."""
    ids = args.get("invoicelineids")
    if not isinstance(ids, list) or not ids:
        raise CommandError("invoicelineids missing or not a collection")
    try:
        line_ids = [parse_number(value, "invoicelineids") for value in ids]
        order_number = parse_string(args["ordernumber"], "ordernumber") if args.get("ordernumber") else ""
    except BadValue as exc:
        raise CommandError(str(exc)) from None
    table = ctx.table("invoiceline")
    for line_id in line_ids:
        row = table.get(line_id)
        if row is None or row["processed"]:
            continue
        table.put(line_id, {**row, "processed": True, "ordernumber": order_number}, write_time(ctx))
    return {}


WORK_COMMANDS = {
    "GetTodosByLastChange": get_todos_by_last_change,
    "CreateUpdateTodo": create_update_todo,
    "CloseTodoByID": close_todo_by_id,
    "GetInvoiceLinesByLastChange": get_invoice_lines_by_last_change,
    "GetPendingInvoiceLines": get_pending_invoice_lines,
    "AddInvoiceLine": add_invoice_line,
    "MarkInvoiceLinesAsProcessed": mark_invoice_lines_as_processed,
}
