"""Render compact rows as Dolibarr's wide JSON objects, fast.

Each shape from :mod:`shapes` is compiled once into a ``str.format`` template whose slots are the
``"$name"`` placeholders; rendering a record encodes only its ~20 varying values and formats the
template, so a page of 100 products is one pass of C-level formatting, not 16,000 dict entries.
Values follow Dolibarr's typing: ids and numbers as strings, money with 8 decimals, rates with 4,
dates as Unix integers, empty dates as ``""`` or ``null`` exactly where the recording shows them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from urllib.parse import quote

from etl.simulators.miclinik.options import MiclinikOptions
from etl.simulators.miclinik.rows import LineRow, OrderRow, ProductRow, ThirdpartyRow, UserRow, sql_datetime
from etl.simulators.miclinik.shapes import EXTRA_KEYS, OLD_MISSING, SHAPES

_SLOT = re.compile(r'"\$(\w+)"')


class Template:
    """One wide object compiled to a format string; ``render`` takes already-encoded JSON values."""

    def __init__(self, shape: Mapping[str, object], drop: frozenset[str] = frozenset(), **append: object) -> None:
        obj = {key: value for key, value in shape.items() if key not in drop} | append
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        text = text.replace("{", "{{").replace("}", "}}")
        self.names = frozenset(_SLOT.findall(text))
        self.format_map = _SLOT.sub(r"{\1}", text).format_map

    def render(self, values: Mapping[str, str]) -> str:
        """The object's JSON text."""
        return self.format_map(values)


def s(value: str | None) -> str:
    """A nullable text column."""
    return "null" if value is None else encode_basestring(value)


def q(value: object) -> str:
    """A number the way PHP's mysqli hands it over: a string, or null."""
    return "null" if value is None else f'"{value}"'


def money(value: Decimal) -> str:
    """A price or total: 8 decimals, as a string."""
    return f'"{value:.8f}"'


def rate(value: Decimal) -> str:
    """A VAT rate: 4 decimals, as a string."""
    return f'"{value:.4f}"'


def number(value: Decimal) -> str:
    """A quantity: ``"3"`` or ``"2.5"``."""
    return f'"{value.normalize():f}"'


def integer(value: int | None) -> str:
    """A Unix timestamp or a PHP integer."""
    return "null" if value is None else str(int(value))


class Renderer:
    """The compiled templates of one simulator (profile and ``extra_keys`` decide the key set)."""

    def __init__(self, options: MiclinikOptions) -> None:
        self.options = options
        extra = EXTRA_KEYS if options.extra_keys else {}

        def compile_shape(name: str, drop: frozenset[str] = frozenset(), **append: object) -> Template:
            missing = frozenset() if options.is_new else OLD_MISSING[name]
            return Template(SHAPES[name], drop | missing, **append, **extra)

        self.product = compile_shape("product")
        self.thirdparty = compile_shape("thirdparty")
        self.thirdparty_listed = compile_shape("thirdparty", frozenset({"absolute_discount", "absolute_creditnote"}))
        self.order = compile_shape("order")
        self.order_validated = compile_shape("order", frozenset({"actiontypecode"}), trackid="$trackid")
        self.line = Template(SHAPES["order_line"], frozenset() if options.is_new else OLD_MISSING["order_line"])
        self.user = compile_shape("user")

    # -- products -----------------------------------------------------------
    def product_json(self, row: ProductRow, *, after_update: bool = False) -> str:
        """GET /products shape; ``after_update`` gives the in-memory object PUT answers with."""
        ttc = row.price_ttc
        min_ttc = (row.price_min * (1 + row.tva_tx / 100)).quantize(Decimal("0.00001"))
        values = {
            "id": q(row.rowid), "ref": s(row.ref), "ref_ext": s(row.ref_ext), "status": q(row.tosell),
            "note_public": s(row.note_public), "note_private": s(row.note_private), "date_creation": integer(row.datec),
            "label": s(row.label), "description": s(row.description), "type": q(row.fk_product_type),
            "price": money(row.price), "price_ttc": money(ttc), "price_min": money(row.price_min),
            "price_min_ttc": money(min_ttc), "price_base_type": s(row.price_base_type), "tva_tx": rate(row.tva_tx),
            "status_buy": q(row.tobuy), "barcode": s(row.barcode), "ext_sync_flags": q(row.rowid % 4),
        }  # fmt: skip
        if after_update:
            values |= _multiprices(row, ttc) | {"level": "0", "duration": '"0"', "units": '"0"'}
        else:
            # [guess] Product::fetch turns the units into 0 whether the column holds NULL or 0
            values |= _NO_MULTIPRICES | {"level": "null", "duration": '""', "units": "0"}
        return self.product.render(values)

    # -- third parties -------------------------------------------------------
    def thirdparty_json(self, row: ThirdpartyRow, *, listed: bool = False) -> str:
        """GET /thirdparties/{id} shape, or the list item (which lacks the discount keys)."""
        values = {
            "id": q(row.rowid), "status": q(row.status), "country_id": q(row.fk_pays),
            "country_code": s(row.country_code), "note_public": s(row.note_public),
            "note_private": s(row.note_private), "name": s(row.nom), "date_creation": integer(row.datec),
            "name_alias": s(row.name_alias), "phone": s(row.phone), "email": s(row.email), "url": s(row.url),
            "idprof1": s(row.siren), "tva_intra": s(row.tva_intra), "typent_id": q(row.typent_id),
            "client": q(row.client), "prospect": "1" if row.client in (2, 3) else "0",
            "fournisseur": q(row.fournisseur), "code_client": s(row.code_client), "address": s(row.address),
            "zip": s(row.zip), "town": s(row.town), "ext_sync_flags": q(row.rowid % 4), "ref_ext": s(row.ref_ext),
        }  # fmt: skip
        return (self.thirdparty_listed if listed else self.thirdparty).render(values)

    # -- orders --------------------------------------------------------------
    def order_json(self, row: OrderRow, product: Callable[[int], ProductRow | None], variant: str = "get") -> str:
        """GET /orders/{id} ("get"), list item ("list") or POST validate answer ("validate")."""
        validated = row.fk_statut >= 1
        lines = ",".join(self.line_json(line, product) for line in row.lines)
        values = {
            "id": q(row.rowid), "ref": s(row.ref), "statut": q(row.fk_statut), "status": q(row.fk_statut),
            "note_public": s(row.note_public), "note_private": s(row.note_private), "total_ht": money(row.total_ht),
            "total_tva": money(row.total_tva), "total_ttc": money(row.total_ttc), "lines": f"[{lines}]",
            "date_creation": integer(row.datec), "date_modification": integer(row.tms),
            "date_validation": integer(row.date_valid) if validated else '""',
            "user_validation_id": q(row.fk_user_valid) if validated else "null",
            "user_modification_id": '"1"' if validated else "null", "socid": q(row.fk_soc),
            "ref_client": s(row.ref_client), "billed": q(row.facture), "date": integer(row.date_commande),
            "online_payment_url": s(f"{self.options.public_url}/public/payment/newpayment.php?source=order&ref="
                                    f"{quote(row.ref, safe='')}"),
            "contacts_ids": "[]" if variant == "list" else "null",
            "linkedObjectsIds": "null" if variant == "list" else "[]",
            "multicurrency_code": s(self.options.currency), "trackid": s(f"ord{row.rowid}"),
            "ext_sync_flags": q(row.rowid % 4), "ref_ext": s(row.ref_ext),
        }  # fmt: skip
        return (self.order_validated if variant == "validate" else self.order).render(values)

    def line_json(self, line: LineRow, product: Callable[[int], ProductRow | None]) -> str:
        """One order line, with the product columns Dolibarr joins in (null for a free-text line)."""
        p = product(line.fk_product) if line.fk_product is not None else None
        values = {
            "id": q(line.rowid), "total_ht": money(line.total_ht), "total_tva": money(line.total_tva),
            "total_ttc": money(line.total_ttc), "product_type": q(line.product_type), "fk_product": q(line.fk_product),
            "desc": s(line.description), "qty": number(line.qty), "subprice": money(line.subprice),
            "tva_tx": rate(line.tva_tx), "fk_commande": q(line.fk_commande),
            "remise_percent": number(line.remise_percent), "rang": q(line.rang),
        }  # fmt: skip
        if p is None:
            values |= _NO_PRODUCT
        else:
            values |= {
                "ref": s(p.ref), "product_label": s(p.label), "libelle": s(p.label), "product_desc": s(p.description),
                "product_custom_code": '""', "fk_product_type": q(p.fk_product_type), "product_tosell": q(p.tosell),
                "product_tobuy": q(p.tobuy), "product_tobatch": '"0"',
                "units": "null" if p.weight_units is None else f'"{p.weight_units}"',
            }  # fmt: skip
        return self.line.render(values)

    # -- users ---------------------------------------------------------------
    def user_json(self, row: UserRow, *, with_groups: bool = False) -> str:
        """GET /users/{id} shape; ``with_groups`` fills ``user_group_list`` as /users/info does."""
        values = {
            "id": q(row.rowid), "entity": q(row.entity), "statut": q(row.statut), "status": q(row.statut),
            "lastname": s(row.lastname), "firstname": s(row.firstname), "email": s(row.email), "admin": q(row.admin),
            "login": s(row.login), "datec": integer(row.datec), "employee": '"1"', "job": s(row.job),
            "office_phone": s(row.office_phone), "user_mobile": '""', "gender": s(row.gender),
            "user_group_list": "[]" if with_groups else "null",
            "user_creation_id": '"0"' if row.admin else '"1"', "user_modification_id": '"1"',
            "datelastpassvalidation": s(sql_datetime(row.datec + 1)), "flagdelsessionsbefore": integer(row.datec - 4),
            "ext_sync_flags": q(row.rowid % 4),
        }  # fmt: skip
        return self.user.render(values)


_NO_MULTIPRICES = {
    name: "[]"
    for name in (
        "multiprices", "multiprices_ttc", "multiprices_base_type", "multiprices_default_vat_code",
        "multiprices_min", "multiprices_min_ttc", "multiprices_tva_tx",
    )
}  # fmt: skip
_NO_PRODUCT = {
    "ref": "null", "product_label": "null", "libelle": "null", "product_desc": "null", "product_custom_code": "null",
    "fk_product_type": "null", "product_tosell": "null", "product_tobuy": "null", "product_tobatch": "null",
    "units": "null",
}  # fmt: skip


def _multiprices(row: ProductRow, ttc: Decimal) -> dict[str, str]:
    """The level-1 price arrays the updated in-memory product carries (as recorded after a PUT)."""
    return {
        "multiprices": json.dumps([float(row.price)]),
        "multiprices_ttc": json.dumps([float(ttc)]),
        "multiprices_base_type": json.dumps([row.price_base_type]),
        "multiprices_default_vat_code": "[null]",
        "multiprices_min": json.dumps([_php_number(row.price_min)]),
        "multiprices_min_ttc": json.dumps([_php_number(row.price_min)]),
        "multiprices_tva_tx": f"[{rate(row.tva_tx)}]",
    }


def _php_number(value: Decimal) -> int | float:
    """PHP keeps an integral float it got from an int as an int in JSON."""
    return int(value) if value == value.to_integral_value() else float(value)


def select_properties(text: str, properties: list[str]) -> dict[str, object]:
    """``properties=a,b`` (NEW): keep only those keys, in the object's own order."""
    obj = json.loads(text)
    wanted = set(properties)
    return {key: value for key, value in obj.items() if key in wanted}
