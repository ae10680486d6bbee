"""POST/PUT/DELETE endpoints: the write-back flows of protocols.md §1.7.

A create answers the new rowid as a bare JSON integer; a missing mandatory field is 400
``<field> field missing``; the model layer's refusals are 500 ``Error creating <obj>`` with the
reasons as details ``"0"``, ``"1"`` ... A fired ``busy`` fault is such a refusal (a lock wait), and
nothing is written. Text fields are stored the way :mod:`sanitize` describes. Orders are in
:mod:`views_orders`.

As seen on Dolibarr 23 (§1.9): ``ref_ext`` is kept on products, third parties and orders (not
unique); a duplicate product ref, compared case-insensitively, is 500 ErrorProductAlreadyExists; a
custom ``code_client`` is 500 ErrorBadCustomerCodeSyntax with the default numbering module (``-1``
asks for the next code); DELETE /products/{id} is 409 while an order line uses the product.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from etl.simulators.miclinik.errors import RestError, json_response, json_value
from etl.simulators.miclinik.population import COUNTRY_IDS, yymm
from etl.simulators.miclinik.rows import ProductRow, ThirdpartyRow, UserRow
from etl.simulators.miclinik.sanitize import incoming_text, product_ref
from etl.simulators.miclinik.values import to_decimal, to_int
from etl.simulators.miclinik.views_read import require

if TYPE_CHECKING:
    from etl.simulators.miclinik.app import MiclinikState

# [guess] the reason the model layer gives when the busy fault fires.
LOCK_WAIT = "Lock wait timeout exceeded; try restarting transaction"
COUNTRY_CODES = {rowid: code for code, rowid in COUNTRY_IDS.items()}


def mandatory(body: dict, fields: tuple[str, ...], source: str) -> None:
    """``_validate()``: the first missing field is a 400."""
    for name in fields:
        if body.get(name) in (None, ""):
            raise RestError(400, f"{name} field missing", source=source)


def text(state: MiclinikState, body: dict, name: str, default: str | None = None) -> str | None:
    """A text field of the body as Dolibarr stores it (None when absent)."""
    value = body.get(name)
    if value is None:
        return default
    return incoming_text(name, str(value), new_profile=state.options.is_new)


def refuse_if_busy(state: MiclinikState, what: str, source: str) -> None:
    """The ``busy`` fault: the model layer fails, nothing is stored."""
    if state.roll("busy"):
        raise RestError(500, f"Error creating {what}", details=[LOCK_WAIT], source=source)


# -- products ------------------------------------------------------------------
PRODUCT_SOURCE = "api_products.class.php"


def _apply_product(state: MiclinikState, row: ProductRow, body: dict) -> None:
    """Copy the body's known fields onto the row (the API copies every field it is given)."""
    if "ref" in body:
        ref = product_ref(text(state, body, "ref") or "")
        other = state.store.product_by_ref(ref)
        if other is not None and other is not row:
            duplicate = ["ErrorProductAlreadyExists"]
            raise RestError(500, "Error creating product", details=duplicate, source=f"{PRODUCT_SOURCE}:349")
        state.store.rename_product(row, ref)
    for name in ("label", "description", "note_public", "note_private", "barcode", "ref_ext", "price_base_type"):
        if name in body:
            setattr(row, name, text(state, body, name))
    if "type" in body:
        row.fk_product_type = to_int(body["type"])
    if "status" in body:
        row.tosell = to_int(body["status"])
    if "status_buy" in body:
        row.tobuy = to_int(body["status_buy"])
    for name in ("price", "price_min", "tva_tx"):
        if name in body:
            setattr(row, name, to_decimal(body[name]))


async def create_product(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """POST /products: ``ref`` and ``label`` mandatory; a taken ref is 500 ErrorProductAlreadyExists."""
    require(state, user, "produit.creer")
    mandatory(body, ("ref", "label"), f"{PRODUCT_SOURCE}:2396")
    refuse_if_busy(state, "product", f"{PRODUCT_SOURCE}:349")
    store = state.store
    now = store.now()
    zero = to_decimal(0)
    row = ProductRow(store.next_product_id(), "", "", 0, zero, zero, now, now, tosell=0, tobuy=0)
    _apply_product(state, row, body)
    row.true_id = store.next_true_id("product")
    store.add_product(row)
    return json_value(row.rowid)


async def update_product(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """PUT /products/{id}: the updated object (with the price arrays an update fills in)."""
    require(state, user, "produit.creer")
    row = state.store.product(int(request.match_info["id"]))
    if row is None:
        raise RestError(404, "Product not found", source=f"{PRODUCT_SOURCE}:2436")
    if "stock_reel" in body:
        message = "Stock reel cannot be updated here. Use the /stockmovements endpoint instead"
        raise RestError(400, message, source=f"{PRODUCT_SOURCE}:0")
    _apply_product(state, row, body)
    row.weight_units = 0  # Product::update writes 0 where the row held NULL
    state.store.touch(row)
    return json_response(state.renderer.product_json(row, after_update=True))


async def delete_product(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """DELETE /products/{id}: 409 while an order line uses it; a second delete is 404."""
    require(state, user, "produit.supprimer")
    rowid = int(request.match_info["id"])
    if state.store.product(rowid) is None:
        raise RestError(404, "Product not found", source=f"{PRODUCT_SOURCE}:0")
    if state.store.product_in_orders(rowid):
        raise RestError(409, "Can't delete, that product is probably used", source=f"{PRODUCT_SOURCE}:0")
    state.store.delete_product(rowid)
    return json_value({"success": {"code": 200, "message": "Object deleted"}})


# -- third parties -------------------------------------------------------------
THIRDPARTY_SOURCE = "api_thirdparties.class.php"
THIRDPARTY_TEXT = (
    "email", "phone", "address", "zip", "town", "name_alias", "url", "tva_intra", "note_public", "note_private",
)  # fmt: skip


def _apply_thirdparty(state: MiclinikState, row: ThirdpartyRow, body: dict) -> None:
    if "name" in body:
        row.nom = text(state, body, "name") or ""
    for name in (*THIRDPARTY_TEXT, "ref_ext"):
        if name in body:
            setattr(row, name, text(state, body, name))
    for name in ("client", "fournisseur", "status"):
        if name in body:
            setattr(row, name, to_int(body[name]))
    if "country_id" in body:
        row.fk_pays = to_int(body["country_id"]) or None
        row.country_code = COUNTRY_CODES.get(row.fk_pays or 0, "")
    if "code_client" in body:
        code = str(body["code_client"])
        if code != "-1":
            # mod_codeclient_monkey (the default) accepts only the codes it makes itself
            details = ["ErrorBadCustomerCodeSyntax"]
            raise RestError(500, f"Error {'updating' if row.tms else 'creating'} thirdparty", details=details)
        row.code_client = f"CU{yymm(row.datec)}-{row.rowid:05d}" if row.client in (1, 3) else None


async def create_thirdparty(
    request: web.Request, state: MiclinikState, user: UserRow | None, body: Any
) -> web.Response:
    """POST /thirdparties: ``name`` mandatory (and ``email`` with SOCIETE_EMAIL_MANDATORY)."""
    require(state, user, "societe.creer")
    mandatory(body, ("name", "email") if state.options.email_mandatory else ("name",), f"{THIRDPARTY_SOURCE}:0")
    refuse_if_busy(state, "thirdparty", f"{THIRDPARTY_SOURCE}:0")
    store = state.store
    automatic = str(body.get("code_client")) == "-1"  # two transactions may take the same next code
    async with state.transactions.create("thirdparty", "thirdparty", f"{THIRDPARTY_SOURCE}:0", may_conflict=automatic):
        now = store.now()
        row = ThirdpartyRow(len(store.thirdparties) + 1, "", 0, None, now, 0)
        _apply_thirdparty(state, row, body)
        row.tms = now
        row.true_id = store.next_true_id("customer")
        store.add_thirdparty(row)
    return json_value(row.rowid)


async def update_thirdparty(
    request: web.Request, state: MiclinikState, user: UserRow | None, body: Any
) -> web.Response:
    """PUT /thirdparties/{id}: the updated object."""
    require(state, user, "societe.creer")
    row = state.store.thirdparties.get(int(request.match_info["id"]))
    if row is None:
        raise RestError(404, "Thirdparty not found", source=f"{THIRDPARTY_SOURCE}:2611")
    _apply_thirdparty(state, row, body)
    state.store.touch(row)
    return json_response(state.renderer.thirdparty_json(row))


# -- users ---------------------------------------------------------------------
USER_SOURCE = "api_users.class.php"


async def create_user(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """POST /users: ``login`` mandatory; ``api_key`` and passwords cannot be set (405)."""
    require(state, user, "user.creer")
    for name in body:
        if name == "api_key" or name.startswith("pass"):
            raise RestError(405, f"The property {name} can't be set/modified using the APIs", source=f"{USER_SOURCE}:0")
    mandatory(body, ("login",), f"{USER_SOURCE}:0")
    store = state.store
    login = text(state, body, "login") or ""
    if any(u.login.lower() == login.lower() for u in store.users.values()):
        raise RestError(500, "Error creating", details=["ErrorLoginAlreadyExists"], source=f"{USER_SOURCE}:0")
    refuse_if_busy(state, "user", f"{USER_SOURCE}:0")
    now = store.now()
    rowid = max(store.users) + 1
    store.users[rowid] = UserRow(
        rowid=rowid,
        login=login,
        lastname=text(state, body, "lastname", "") or "",
        firstname=text(state, body, "firstname", "") or "",
        email=text(state, body, "email", "") or "",
        admin=to_int(body.get("admin", 0)),
        entity=state.options.entity,
        datec=now,
        tms=now,
        true_id=-rowid,
    )
    store.version += 1
    return json_value(rowid)
