"""Order writes: create, lines (add, update), validate, update, delete (protocols.md §1.7, §1.9).

As seen on Dolibarr 23: a free-text line without ``product_type`` is the database's 400; lines go
only on drafts (400 otherwise); a partial ``PUT .../lines/{lineid}`` zeroes what it does not send
(``subprice``, VAT, description); validate refuses a line whose product is not on sale or does not
exist (500 ErrorOneLineContainsADisactivatedProduct) and answers 304 once validated. Changing a
line moves the order's ``tms`` only when the order's totals change: MariaDB bumps a TIMESTAMP
only when the row's UPDATE changes a value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from etl.simulators.miclinik.errors import RestError, json_response, json_value
from etl.simulators.miclinik.population import yymm
from etl.simulators.miclinik.rows import LineRow, OrderRow, UserRow
from etl.simulators.miclinik.values import to_date, to_decimal, to_int
from etl.simulators.miclinik.views_read import _order, require
from etl.simulators.miclinik.views_write import mandatory, refuse_if_busy, text

if TYPE_CHECKING:
    from etl.simulators.miclinik.app import MiclinikState

ORDER_SOURCE = "api_orders.class.php"
# The database's refusal of an empty product_type, passed on as commande->error. [guess on the schema name]
NO_PRODUCT_TYPE = "Incorrect integer value: '' for column `dolibarr`.`llx_commandedet`.`product_type` at row 1"
DISACTIVATED = "ErrorOneLineContainsADisactivatedProduct"


def _new_line(state: MiclinikState, order: OrderRow, body: dict, *, strict: bool = False) -> LineRow:
    """``Commande::addline`` from a line body; ``strict``: refuse a missing ``product_type`` as the
    database does when no existing product supplies it (POST .../lines)."""
    fk_product = to_int(body["fk_product"]) if body.get("fk_product") not in (None, "", 0, "0") else None
    product = state.store.product(fk_product) if fk_product is not None else None
    if strict and product is None and body.get("product_type") in (None, ""):
        raise RestError(400, NO_PRODUCT_TYPE, source=f"{ORDER_SOURCE}:0")
    default_type = product.fk_product_type if product is not None else 0
    line = LineRow(
        rowid=state.store.next_line_id,
        fk_commande=order.rowid,
        fk_product=fk_product,
        product_type=to_int(body.get("product_type", default_type)),
        qty=to_decimal(body.get("qty", 0)),
        subprice=to_decimal(body.get("subprice", 0)),
        tva_tx=to_decimal(body.get("tva_tx", 0)),
        description=text(state, body, "desc", "") or "",
        remise_percent=to_decimal(body.get("remise_percent", 0)),
        rang=to_int(body.get("rang", 0)),
    )
    state.store.next_line_id += 1
    return line


async def create_order(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """POST /orders: ``socid`` (NEW: and ``date``) mandatory; NEW keeps ``lines`` sent along, OLD drops them."""
    require(state, user, "commande.creer")
    new = state.options.is_new
    mandatory(body, ("socid", "date") if new else ("socid",), f"{ORDER_SOURCE}:0")
    store = state.store
    socid = to_int(body["socid"])
    if store.thirdparties.get(socid) is None:
        # [guess] the foreign key on fk_soc refuses the insert
        raise RestError(500, "Error creating order", details=["ErrorRecordNotFound"], source=f"{ORDER_SOURCE}:0")
    refuse_if_busy(state, "order", f"{ORDER_SOURCE}:0")
    async with state.transactions.create("order", "order", f"{ORDER_SOURCE}:0"):
        now = store.now()
        rowid = store.next_order_id()
        row = OrderRow(
            rowid=rowid,
            ref=f"(PROV{rowid})",
            fk_soc=socid,
            fk_statut=0,
            date_commande=to_date(body.get("date"), now),
            datec=now,
            tms=now,
            ref_client=text(state, body, "ref_client"),
            ref_ext=text(state, body, "ref_ext"),
            note_public=text(state, body, "note_public", "") or "",
            note_private=text(state, body, "note_private", "") or "",
            fk_user_author=user.rowid if user else 1,
        )
        row.true_id = store.next_true_id("order")
        # Dolibarr 23 keeps lines sent with the order (as recorded); [guess] the OLD post() dropped them
        # (its lines loop is commented out, and reference page 004 warns they are not created reliably).
        if new and isinstance(body.get("lines"), list):
            row.lines = [_new_line(state, row, line) for line in body["lines"] if isinstance(line, dict)]
        store.add_order(row)
    return json_value(rowid)


def _draft(order: OrderRow) -> None:
    if order.fk_statut != 0:
        # [guess] addline/updateline return -3 without setting ->error, so the 400 carries no text
        raise RestError(400, "", source=f"{ORDER_SOURCE}:0")


async def add_order_line(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """POST /orders/{id}/lines: only on a draft; a free-text line needs ``product_type``."""
    require(state, user, "commande.creer")
    order = _order(state, request)
    _draft(order)
    line = _new_line(state, order, body, strict=True)
    order.lines.append(line)
    state.store.touch(order)
    return json_value(line.rowid)


async def update_order_line(
    request: web.Request, state: MiclinikState, user: UserRow | None, body: Any
) -> web.Response:
    """PUT /orders/{id}/lines/{lineid}: ``updateline`` with every argument from the body, so what is
    not sent becomes 0 or empty (a partial PUT zeroes the price, VAT and description, §1.9)."""
    require(state, user, "commande.creer")
    order = _order(state, request)
    lineid = int(request.match_info["lineid"])
    line = next((line for line in order.lines if line.rowid == lineid), None)
    if line is None:
        raise RestError(404, "Line not found", source=f"{ORDER_SOURCE}:0")  # [guess] text
    _draft(order)
    totals = (order.total_ht, order.total_tva)
    line.qty = to_decimal(body.get("qty", 0))
    line.subprice = to_decimal(body.get("subprice", 0))
    line.tva_tx = to_decimal(body.get("tva_tx", 0))
    line.remise_percent = to_decimal(body.get("remise_percent", 0))
    line.description = text(state, body, "desc", "") or ""
    if "product_type" in body:
        line.product_type = to_int(body["product_type"])
    state.store.version += 1
    if (order.total_ht, order.total_tva) != totals:
        state.store.touch(order)
    return json_response(state.renderer.order_json(order, state.store.product))


async def validate_order(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """POST /orders/{id}/validate: a draft gets its SO number and comes back whole; otherwise 304."""
    require(state, user, "commande.creer")
    order = _order(state, request)
    if order.fk_statut != 0:
        raise RestError(304, "Error nothing done. May be object is already validated", source=f"{ORDER_SOURCE}:0")
    store = state.store
    for line in order.lines:
        product = store.product(line.fk_product) if line.fk_product is not None else None
        if line.fk_product is not None and (product is None or product.tosell != 1):
            raise RestError(500, f"Error when validating Order: {DISACTIVATED}", source=f"{ORDER_SOURCE}:0")
    order.ref = f"SO{yymm(order.date_commande)}-{store.next_order_number:04d}"
    store.next_order_number += 1
    order.fk_statut = 1
    order.date_valid = store.now()
    order.fk_user_valid = user.rowid if user else 1
    store.touch(order)
    return json_response(state.renderer.order_json(order, store.product, "validate"))


async def update_order(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """PUT /orders/{id}: header fields only; the updated object."""
    require(state, user, "commande.creer")
    order = _order(state, request)
    for name in ("ref_client", "ref_ext"):
        if name in body:
            setattr(order, name, text(state, body, name))
    for name in ("note_public", "note_private"):
        if name in body:
            setattr(order, name, text(state, body, name, "") or "")
    if "date" in body:
        order.date_commande = to_date(body["date"], order.date_commande)
    if "billed" in body:
        order.facture = to_int(body["billed"])
    state.store.touch(order)
    return json_response(state.renderer.order_json(order, state.store.product))


async def delete_order(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """DELETE /orders/{id}: again, 404 "Order not found"."""
    require(state, user, "commande.supprimer")
    order = _order(state, request)
    state.store.delete_order(order.rowid)
    return json_value({"success": {"code": 200, "message": "Order deleted"}})
