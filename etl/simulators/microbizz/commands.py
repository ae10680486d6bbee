"""The command handlers: one function per Microbizz command, and the registry the envelope dispatches on.

A handler takes the context and the command's input set and returns its outputs
(the keys that sit beside ``"status":1`` in its result), or raises
:class:`~etl.simulators.microbizz.context.CommandError` for ``{"status":0,"msg":…}``.
Customer, user and echo commands live here; products in ``commands_products``,
todos and invoice lines in ``commands_work``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from etl.simulators.microbizz.commands_products import PRODUCT_COMMANDS
from etl.simulators.microbizz.commands_work import WORK_COMMANDS
from etl.simulators.microbizz.context import (
    CommandError,
    Context,
    by_last_change,
    create_update_by_id,
    create_update_by_number,
    record_list,
    required_number,
    required_text,
)
from etl.simulators.microbizz.types import BadValue, parse_bool

Handler = Callable[[Context, dict[str, Any]], dict[str, Any]]


def echo(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``Echo {text}`` answers ``answer`` = the text."""
    text = args.get("text", "")
    return {"answer": text if isinstance(text, str) else str(text)}


def get_customer_by_id(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``customers`` holds the customer, or nothing when there is no such id."""
    return {"customers": record_list(ctx, "customer", required_number(args, "customerid"))}


def get_customer_by_customer_number(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``customers`` holds one customer with that number (the lowest id among duplicates), or nothing."""
    number = required_text(args, "customernumber")
    return {"customers": record_list(ctx, "customer", ctx.table("customer").find_number(number))}


def get_customers_by_last_change(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Customers changed at or after changedate/changetime, chunked; ``ignoreclosed`` leaves closed ones out."""
    try:
        ignore_closed = parse_bool(args.get("ignoreclosed", False), "ignoreclosed")
    except BadValue as exc:
        raise CommandError(str(exc)) from None
    if ignore_closed:
        return by_last_change(ctx, args, "customer", "customers", keep=lambda row: not row["closed"], flags="c")
    return by_last_change(ctx, args, "customer", "customers")


def create_update_customer_by_id(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``{customer}`` with id 0 creates; otherwise merges into that customer."""
    return create_update_by_id(ctx, args, "customer", "customer")


def create_update_customer_by_customer_number(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``{customer}`` keyed on ``customernumber``; fails without one."""
    return create_update_by_number(ctx, args, "customer", "customer", "customernumber")


def get_user_by_id(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``users`` holds the employee, or nothing."""
    return {"users": record_list(ctx, "user", required_number(args, "userid"))}


def get_users_by_last_change(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Employees changed since changedate/changetime, chunked [guess: the command's name]."""
    return by_last_change(ctx, args, "user", "users")


def create_update_user(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``{user}`` with id 0 creates; otherwise merges into that employee."""
    return create_update_by_id(ctx, args, "user", "user")


COMMANDS: dict[str, Handler] = {
    "Echo": echo,
    "GetCustomerByID": get_customer_by_id,
    "GetCustomerByCustomerNumber": get_customer_by_customer_number,
    "GetCustomersByLastChange": get_customers_by_last_change,
    "CreateUpdateCustomerByID": create_update_customer_by_id,
    "CreateUpdateCustomerByCustomerNumber": create_update_customer_by_customer_number,
    "GetUserByID": get_user_by_id,
    "GetUsersByLastChange": get_users_by_last_change,
    "CreateUpdateUser": create_update_user,
    **PRODUCT_COMMANDS,
    **WORK_COMMANDS,
}
