"""The wide objects Dolibarr 23 returns, copied key for key from the recorded fixtures.

Each shape is the JSON of one recorded object with the values that vary per record
replaced by ``"$name"`` placeholders; :mod:`render` compiles them once into format strings.
Key order is the recorded order. Constant values are the recorded ones.
"""

from __future__ import annotations

import json

PRODUCT = """
{"id": "$id", "entity": "1", "import_key": null, "array_options": [], "array_languages": null, "contacts_ids": null,
"contacts_ids_internal": null, "linkedObjectsIds": null, "canvas": "", "product": null, "origin_type": null, "ref":
"$ref", "ref_ext": "$ref_ext", "status": "$status", "country_id": null, "country_code": "", "state_id": null,
"region_id": null, "barcode_type": null, "barcode_type_coder": null, "shipping_method": null, "fk_multicurrency":
null, "multicurrency_code": null, "multicurrency_tx": null, "multicurrency_total_ht": null,
"multicurrency_total_tva": null, "multicurrency_total_localtax1": null, "multicurrency_total_localtax2": null,
"multicurrency_total_ttc": null, "last_main_doc": null, "note_public": "$note_public", "note_private":
"$note_private", "total_ht": null, "total_tva": null, "total_localtax1": null, "total_localtax2": null, "total_ttc":
null, "actiontypecode": null, "civility_code": null, "date_creation": "$date_creation", "date_validation": null,
"date_modification": "", "tms": null, "date_cloture": null, "user_creation_id": null, "user_validation_id": null,
"user_closing_id": null, "user_modification_id": null, "fk_user_creat": null, "fk_user_modif": null, "specimen": 0,
"totalpaid": null, "totalpaid_multicurrency": null, "extraparams": [], "cond_reglement_supplier_id": null,
"deposit_percent": null, "retained_warranty_fk_cond_reglement": null, "warehouse_id": null, "label": "$label",
"description": "$description", "other": null, "type": "$type", "price": "$price", "price_formated": null,
"price_ttc": "$price_ttc", "price_ttc_formated": null, "price_min": "$price_min", "price_min_ttc": "$price_min_ttc",
"price_base_type": "$price_base_type", "price_label": null, "multiprices": "$multiprices", "multiprices_ttc":
"$multiprices_ttc", "multiprices_base_type": "$multiprices_base_type", "multiprices_default_vat_code":
"$multiprices_default_vat_code", "multiprices_min": "$multiprices_min", "multiprices_min_ttc":
"$multiprices_min_ttc", "multiprices_tva_tx": "$multiprices_tva_tx", "prices_by_qty": [], "prices_by_qty_list": [],
"level": "$level", "multilangs": [], "default_vat_code": null, "tva_tx": "$tva_tx", "remise_percent": null,
"localtax1_tx": "0.0000", "localtax2_tx": "0.0000", "localtax1_type": "0", "localtax2_type": "0", "desc_supplier":
null, "vatrate_supplier": null, "default_vat_code_supplier": null, "fourn_multicurrency_price": null,
"fourn_multicurrency_unitprice": null, "fourn_multicurrency_tx": null, "fourn_multicurrency_id": null,
"fourn_multicurrency_code": null, "packaging": null, "lifetime": null, "qc_frequency": null, "cost_price": null,
"pmp": "0.00000000", "seuil_stock_alerte": "0", "desiredstock": "0", "duration_value": 0, "duration_unit": null,
"duration": "$duration", "fk_default_workstation": null, "tosell": null, "status_buy": "$status_buy", "tobuy": null,
"finished": null, "fk_default_bom": null, "product_fourn_price_id": null, "buyprice": null, "tobatch": null,
"status_batch": "0", "sell_or_eat_by_mandatory": "0", "batch_mask": "", "customcode": "", "url": null, "weight":
null, "weight_units": "$units", "length": null, "length_units": "$units", "width": null, "width_units": "$units",
"height": null, "height_units": "$units", "surface": null, "surface_units": "$units", "volume": null,
"volume_units": "$units", "net_measure": null, "net_measure_units": null, "accountancy_code_sell": "",
"accountancy_code_sell_intra": "", "accountancy_code_sell_export": "", "accountancy_code_buy": "",
"accountancy_code_buy_intra": "", "accountancy_code_buy_export": "", "barcode": "$barcode",
"stats_proposal_supplier": [], "stats_expedition": [], "stats_mo": [], "stats_bom": [], "stats_facturerec": [],
"stats_facture_fournisseur": [], "stats_facturefournrec": [], "fk_default_warehouse": null, "fk_price_expression":
null, "fourn_qty": null, "fk_unit": null, "price_autogen": "0", "sousprods": [], "res": null, "is_object_used":
null, "is_sousproduit_qty": null, "is_sousproduit_incdec": null, "mandatory_period": "0", "stockable_product": "1"}
"""

THIRDPARTY = """
{"module": "societe", "id": "$id", "entity": "1", "import_key": null, "array_options": [], "array_languages": null,
"contacts_ids": null, "contacts_ids_internal": null, "linkedObjectsIds": null, "canvas": null, "fk_project": null,
"contact_id": null, "user": null, "product": null, "origin_type": null, "origin_id": null, "ref": "$name",
"ref_ext": "$ref_ext", "statut": null, "status": "$status", "country_id": "$country_id",
"country_code": "$country_code",
"state_id": null, "region_id": null, "barcode_type": null, "barcode_type_coder": null, "mode_reglement_id": null,
"cond_reglement_id": null, "demand_reason_id": null, "transport_mode_id": null, "shipping_method_id": null,
"shipping_method": null, "fk_multicurrency": "0", "multicurrency_code": "", "multicurrency_tx": null,
"multicurrency_total_ht": null, "multicurrency_total_tva": null, "multicurrency_total_localtax1": null,
"multicurrency_total_localtax2": null, "multicurrency_total_ttc": null, "model_pdf": "", "last_main_doc": null,
"fk_account": "0", "note_public": "$note_public", "note_private": "$note_private", "actiontypecode": null, "name":
"$name", "lastname": null, "firstname": null, "civility_id": null, "civility_code": null, "date_creation":
"$date_creation", "date_validation": null, "date_modification": "", "tms": null, "date_cloture": null,
"user_creation_id": "1", "user_validation_id": null, "user_closing_id": null, "user_modification_id": "1",
"fk_user_creat": null, "fk_user_modif": null, "specimen": 0, "totalpaid": null, "totalpaid_multicurrency": null,
"extraparams": [], "cond_reglement_supplier_id": null, "deposit_percent": null,
"retained_warranty_fk_cond_reglement": null, "warehouse_id": null, "SupplierCategories": [],
"prefixCustomerIsRequired": null, "name_alias": "$name_alias", "phone": "$phone", "phone_mobile": null, "fax": null,
"email": "$email", "no_email": null, "skype": null, "twitter": null, "facebook": null, "linkedin": null, "url":
"$url", "barcode": null, "idprof1": "$idprof1", "idprof2": "", "idprof3": "", "idprof4": "", "idprof5": "",
"idprof6": "", "idprof7": null, "idprof8": null, "idprof9": null, "idprof10": null, "socialobject": null,
"tva_assuj": "1", "tva_intra": "$tva_intra", "vat_reverse_charge": 0, "localtax1_assuj": "0", "localtax1_value":
"0.0000", "localtax2_assuj": "0", "localtax2_value": "0.0000", "managers": null, "capital": null, "typent_id":
"$typent_id", "typent_code": null, "effectif": "", "effectif_id": null, "forme_juridique_code": null,
"forme_juridique": "", "birth": "", "remise_percent": 0, "remise_supplier_percent": "0",
"mode_reglement_supplier_id": null, "transport_mode_supplier_id": null, "fk_prospectlevel": "", "user_modification":
null, "user_creation": null, "client": "$client", "prospect": "$prospect", "fournisseur": "$fournisseur",
"code_client": "$code_client", "code_fournisseur": null, "code_compta_client": null,
"accountancy_code_customer_general": null, "accountancy_code_customer": null, "code_compta_fournisseur": null,
"accountancy_code_supplier_general": null, "accountancy_code_supplier": null, "code_compta_product": null,
"stcomm_id": "0", "stcomm_picto": null, "status_prospect_label": "Never contacted", "price_level": null,
"outstanding_limit": null, "order_min_amount": null, "supplier_order_min_amount": null, "parent": null,
"default_lang": null, "ip": null, "webservices_url": null, "webservices_key": null, "logo": null, "logo_small":
null, "logo_mini": null, "logo_squarred": null, "logo_squarred_small": null, "logo_squarred_mini": null,
"accountancy_code_sell": "", "accountancy_code_buy": "", "currency_code": null, "fk_warehouse": null, "termsofsale":
null, "partnerships": [], "bank_account": null, "code_compta": null, "fk_incoterms": "0", "label_incoterms": null,
"location_incoterms": null, "socialnetworks": [], "address": "$address", "zip": "$zip", "town": "$town",
"absolute_discount": "0", "absolute_creditnote": "0"}
"""

ORDER = """
{"module": null, "id": "$id", "entity": "1", "import_key": null, "array_options": [], "array_languages": null,
"contacts_ids": "$contacts_ids", "contacts_ids_internal": null, "linkedObjectsIds": "$linkedObjectsIds", "canvas":
null, "fk_project": null, "contact_id": null, "user": null, "product": null, "origin_type": null, "origin_id": null,
"ref": "$ref", "ref_ext": "$ref_ext", "statut": "$statut", "status": "$status", "country_id": null,
"country_code": null,
"state_id": null, "region_id": null, "mode_reglement_id": null, "cond_reglement_id": null, "demand_reason_id": null,
"transport_mode_id": null, "shipping_method_id": null, "shipping_method": null, "fk_multicurrency": "0",
"multicurrency_code": "$multicurrency_code", "multicurrency_tx": "1.00000000", "multicurrency_total_ht":
"$total_ht", "multicurrency_total_tva": "$total_tva", "multicurrency_total_localtax1": null,
"multicurrency_total_localtax2": null, "multicurrency_total_ttc": "$total_ttc", "model_pdf": "", "last_main_doc":
null, "fk_account": null, "note_public": "$note_public", "note_private": "$note_private", "total_ht": "$total_ht",
"total_tva": "$total_tva", "total_localtax1": "0.00000000", "total_localtax2": "0.00000000", "total_ttc":
"$total_ttc", "lines": "$lines", "actiontypecode": null, "name": null, "lastname": null, "firstname": null,
"civility_id": null, "civility_code": null, "date_creation": "$date_creation", "date_validation":
"$date_validation", "date_modification": "$date_modification", "tms": null, "date_cloture": null,
"user_creation_id": "1", "user_validation_id": "$user_validation_id", "user_closing_id": null,
"user_modification_id": "$user_modification_id", "fk_user_creat": null, "fk_user_modif": null, "specimen": 0,
"totalpaid": null, "totalpaid_multicurrency": null, "extraparams": [], "cond_reglement_supplier_id": null,
"deposit_percent": null, "retained_warranty_fk_cond_reglement": null, "warehouse_id": null, "code": "",
"fk_incoterms": "0", "label_incoterms": null, "location_incoterms": "", "socid": "$socid", "ref_client":
"$ref_client", "ref_customer": "$ref_client", "contactid": null, "billed": "$billed", "date_lim_reglement": null,
"cond_reglement_code": null, "cond_reglement_doc": null, "mode_reglement_code": null, "availability_id": null,
"availability_code": null, "availability": null, "demand_reason_code": null, "date": "$date", "date_commande":
"$date", "delivery_date": "", "fk_remise_except": null, "remise_percent": null, "source": null, "signed_status": 0,
"user_author_id": "1", "line": null, "module_source": null, "pos_source": null, "expeditions": null,
"online_payment_url": "$online_payment_url"}
"""

ORDER_LINE = """
{"module": null, "id": "$id", "entity": null, "import_key": null, "array_options": [], "array_languages": null,
"contacts_ids": null, "contacts_ids_internal": null, "linkedObjectsIds": null, "canvas": null, "product": null,
"origin_type": null, "origin_id": null, "ref": "$ref", "ref_ext": "", "statut": null, "status": null, "state_id":
null, "region_id": null, "demand_reason_id": null, "transport_mode_id": null, "shipping_method": null,
"multicurrency_tx": null, "multicurrency_total_ht": "$total_ht", "multicurrency_total_tva": "$total_tva",
"multicurrency_total_localtax1": null, "multicurrency_total_localtax2": null, "multicurrency_total_ttc":
"$total_ttc", "last_main_doc": null, "fk_account": null, "total_ht": "$total_ht", "total_tva": "$total_tva",
"total_localtax1": "0.00000000", "total_localtax2": "0.00000000", "total_ttc": "$total_ttc", "lines": null,
"actiontypecode": null, "civility_code": null, "date_creation": null, "date_validation": null, "date_modification":
null, "tms": null, "date_cloture": null, "user_creation_id": null, "user_validation_id": null, "user_closing_id":
null, "user_modification_id": null, "fk_user_creat": null, "fk_user_modif": null, "specimen": 0, "totalpaid": null,
"totalpaid_multicurrency": null, "extraparams": [], "cond_reglement_supplier_id": null, "deposit_percent": null,
"retained_warranty_fk_cond_reglement": null, "warehouse_id": null, "parent_element": "", "fk_parent_attribute": "",
"rowid": "$id", "fk_unit": null, "date_debut_prevue": null, "date_debut_reel": null, "date_fin_prevue": null,
"date_fin_reel": null, "weight": null, "weight_units": "$units", "length": null, "length_units": null, "width":
null, "width_units": null, "height": null, "height_units": null, "surface": null, "surface_units": null, "volume":
null, "volume_units": "$units", "multilangs": null, "product_type": "$product_type", "fk_product": "$fk_product",
"desc": "$desc", "description": "$desc", "product_ref": "$ref", "product_label": "$product_label",
"product_barcode": null, "product_desc": "$product_desc", "product_custom_code": "$product_custom_code",
"product_custom_country_code": null, "product_custom_country_id": null, "fk_product_type": "$fk_product_type",
"qty": "$qty", "duree": null, "remise_percent": "$remise_percent", "info_bits": "0", "special_code": "0",
"subprice": "$subprice", "subprice_ttc": null, "tva_tx": "$tva_tx", "multicurrency_subprice": "$subprice",
"multicurrency_subprice_ttc": null, "label": null, "libelle": "$libelle", "product_tosell": "$product_tosell",
"product_tobuy": "$product_tobuy", "product_tobatch": "$product_tobatch", "price": null, "vat_src_code": "",
"localtax1_tx": "0.0000", "localtax2_tx": "0.0000", "localtax1_type": "0", "localtax2_type": "0", "fk_commande":
"$fk_commande", "commande_id": "$fk_commande", "fk_parent_line": null, "fk_facture": null, "fk_remise_except": null,
"rang": "$rang", "fk_fournprice": null, "pa_ht": "0.00000000", "marge_tx": "", "marque_tx": 100, "remise": null,
"date_start": "", "date_end": "", "packaging": null}
"""

USER = """
{"module": null, "id": "$id", "entity": "$entity", "import_key": null, "array_options": [], "array_languages": null,
"contacts_ids": null, "contacts_ids_internal": null, "linkedObjectsIds": null, "canvas": null, "fk_project": null,
"contact_id": null, "user": null, "product": null, "origin_type": null, "origin_id": null, "ref": "$id", "ref_ext":
null, "statut": "$statut", "status": "$status", "country_id": null, "country_code": "", "state_id": null,
"region_id": null, "barcode_type": null, "barcode_type_coder": null, "mode_reglement_id": null, "cond_reglement_id":
null, "demand_reason_id": null, "transport_mode_id": null, "shipping_method": null, "fk_multicurrency": null,
"multicurrency_code": null, "multicurrency_tx": null, "multicurrency_total_ht": null, "multicurrency_total_tva":
null, "multicurrency_total_localtax1": null, "multicurrency_total_localtax2": null, "multicurrency_total_ttc": null,
"last_main_doc": null, "fk_account": null, "note_public": "", "note_private": "", "actiontypecode": null, "name":
null, "lastname": "$lastname", "firstname": "$firstname", "civility_id": null, "civility_code": "", "date_creation":
null, "date_validation": null, "date_modification": null, "tms": null, "date_cloture": null, "user_creation_id":
"$user_creation_id", "user_validation_id": null, "user_closing_id": null, "user_modification_id":
"$user_modification_id", "fk_user_creat": null, "fk_user_modif": null, "specimen": 0, "totalpaid": null,
"totalpaid_multicurrency": null, "extraparams": [], "cond_reglement_supplier_id": null, "deposit_percent": null,
"retained_warranty_fk_cond_reglement": null, "warehouse_id": null, "employee": "$employee", "fullname": null,
"gender": "$gender", "birth": "", "email": "$email", "email_oauth2": null, "personal_email": "", "socialnetworks":
[], "job": "$job", "signature": "", "office_phone": "$office_phone", "office_fax": "", "user_mobile":
"$user_mobile", "personal_mobile": "", "admin": "$admin", "login": "$login", "pass_crypted": null, "datec":
"$datec", "datem": "", "socid": null, "fk_member": null, "fk_user": null, "fk_user_expense_validator": null,
"fk_user_holiday_validator": null, "clicktodial_url": null, "clicktodial_login": null, "clicktodial_poste": null,
"datelastpassvalidation": "$datelastpassvalidation", "datelastlogin": "", "datepreviouslogin": "",
"flagdelsessionsbefore": "$flagdelsessionsbefore", "iplastlogin": null, "ippreviouslogin": null,
"datestartvalidity": "", "dateendvalidity": "", "photo": null, "lang": null, "rights": {"user": {"user": {}, "self":
{}, "user_advance": {}, "self_advance": {}, "group_advance": {}}}, "user_group_list": "$user_group_list", "conf":
{}, "users": [], "parentof": null, "accountancy_code_user_general": "", "accountancy_code": "", "thm": null, "tjm":
null, "salary": null, "salaryextra": null, "weeklyhours": null, "color": "", "dateemployment": "",
"dateemploymentend": "", "default_c_exp_tax_cat": null, "ref_employee": "", "national_registration_number": "",
"default_range": null, "fk_warehouse": null, "fk_establishment": null, "label_establishment": null,
"usergroup_entity": null, "address": "", "zip": "", "town": "", "url": null}
"""

SHAPES: dict[str, dict[str, object]] = {
    name: json.loads(text)
    for name, text in (
        ("product", PRODUCT),
        ("thirdparty", THIRDPARTY),
        ("order", ORDER),
        ("order_line", ORDER_LINE),
        ("user", USER),
    )
}

# Keys the OLD profile's objects do not have yet: new keys appear between versions (protocols.md §1.6). [guess]
OLD_MISSING: dict[str, frozenset[str]] = {
    "product": frozenset({"stockable_product", "mandatory_period", "fk_default_workstation", "price_label"}),
    "thirdparty": frozenset({"module", "SupplierCategories", "vat_reverse_charge", "partnerships", "email_oauth2"}),
    "order": frozenset({"module", "signed_status", "online_payment_url", "module_source", "pos_source"}),
    "order_line": frozenset({"module", "subprice_ttc", "multicurrency_subprice_ttc"}),
    "user": frozenset({"module", "email_oauth2", "national_registration_number"}),
}

# Keys no recorded Dolibarr sends, added when ``extra_keys`` is on (a module's hook, a custom field).
EXTRA_KEYS: dict[str, object] = {"fk_legacy_id": None, "ext_sync_flags": "$ext_sync_flags"}
