"""Product (article) commands and individual customer prices.

``AssignIndividualPriceByProductNumber`` takes the price in øre, the smallest
currency unit, and succeeds silently when the product or the customer does not
exist (protocols.md §3.4 [C]). With ``include_prices`` a product carries
``prices``: ``[{"customerid": …, "price": <float in currency units>}]`` [guess: names
and unit of the output]. Assigning or removing a price counts as a change of the
product, so the next ``GetProductsByLastChange`` serves it [guess].
"""

from __future__ import annotations

from typing import Any

from etl.simulators.microbizz.context import (
    CommandError,
    Context,
    by_last_change,
    create_update_by_id,
    create_update_by_number,
    render_object,
    required_number,
    required_text,
    write_time,
)
from etl.simulators.microbizz.store import Row
from etl.simulators.microbizz.types import BadValue, parse_bool


def _include_prices(args: dict[str, Any]) -> bool:
    try:
        return parse_bool(args.get("include_prices", False), "include_prices")
    except BadValue as exc:
        raise CommandError(str(exc)) from None


def _product(ctx: Context, record_id: int, row: Row, include_prices: bool) -> dict[str, Any]:
    out = render_object(ctx, "product", record_id, row)
    if include_prices:
        prices = ctx.state.prices.get(record_id, {})
        out["prices"] = [{"customerid": customer, "price": prices[customer] / 100} for customer in sorted(prices)]
    return out


def _product_list(ctx: Context, record_id: int | None, include_prices: bool) -> dict[str, Any]:
    row = ctx.table("product").get(record_id) if record_id is not None else None
    products = [_product(ctx, record_id, row, include_prices)] if row is not None and record_id is not None else []
    return {"products": products}


def get_product_by_id(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``products`` holds the product (with ``prices`` if asked), or nothing."""
    return _product_list(ctx, required_number(args, "productid"), _include_prices(args))


def get_product_by_product_number(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``products`` holds one product with that number (lowest id among duplicates), or nothing."""
    number = required_text(args, "productnumber")
    return _product_list(ctx, ctx.table("product").find_number(number), _include_prices(args))


def get_products_by_last_change(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Products changed since changedate/changetime, chunked; ``include_prices`` as for the getters."""
    include = _include_prices(args)
    return by_last_change(
        ctx, args, "product", "products", render_row=lambda record_id, row: _product(ctx, record_id, row, include)
    )


def create_update_product_by_id(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``{product}`` with id 0 creates; otherwise merges into that product."""
    return create_update_by_id(ctx, args, "product", "product")


def create_update_product_by_product_number(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``{product}`` keyed on ``productnumber``; fails without one."""
    return create_update_by_number(ctx, args, "product", "product", "productnumber")


def _price_target(ctx: Context, args: dict[str, Any]) -> tuple[int, int] | None:
    number = required_text(args, "productnumber")
    customer_id = required_number(args, "customerid")
    product_id = ctx.table("product").find_number(number)
    if product_id is None or ctx.table("customer").get(customer_id) is None:
        return None
    return product_id, customer_id


def _touch_product(ctx: Context, product_id: int) -> None:
    table = ctx.table("product")
    row = table.get(product_id)
    if row is not None:
        table.put(product_id, dict(row), write_time(ctx))


def assign_individual_price_by_product_number(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Sets a customer's price (øre) for a product; a missing product or customer is a silent no-op."""
    price = required_number(args, "price")
    target = _price_target(ctx, args)
    if target is not None:
        product_id, customer_id = target
        ctx.state.prices.setdefault(product_id, {})[customer_id] = price
        _touch_product(ctx, product_id)
    return {}


def remove_individual_price_by_product_number(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Drops a customer's individual price; nothing to drop is a silent no-op."""
    target = _price_target(ctx, args)
    if target is not None and ctx.state.prices.get(target[0], {}).pop(target[1], None) is not None:
        _touch_product(ctx, target[0])
    return {}


PRODUCT_COMMANDS = {
    "GetProductByID": get_product_by_id,
    "GetProductByProductNumber": get_product_by_product_number,
    "GetProductsByLastChange": get_products_by_last_change,
    "CreateUpdateProductByID": create_update_product_by_id,
    "CreateUpdateProductByProductNumber": create_update_product_by_product_number,
    "AssignIndividualPriceByProductNumber": assign_individual_price_by_product_number,
    "RemoveIndividualPriceByProductNumber": remove_individual_price_by_product_number,
}
