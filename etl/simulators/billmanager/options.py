"""Switches of the BILLmanager simulator.

Every behaviour protocols.md tags [U] is a field here, labelled "[guess]", so a
test or a scenario can flip it and see whether the ETL copes either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEMO_CREDENTIALS: dict[str, str] = {"username": "admin", "password": "demo-billmgr-pass"}


def _default_levels() -> dict[str, int]:
    # [guess] COREmanager access levels; only their order matters to the simulator.
    return {"admin": 28, "reseller": 24, "user": 16}


def _default_projects() -> dict[int, str]:
    return {1: "ISP Hosting Ltd", 2: "Partner Networks Ltd"}


@dataclass
class BillmanagerOptions:
    """Credentials, [guess] choices and limits of one simulated BILLmanager.

    Attributes marked [guess] encode behaviour no source confirmed:

    - ``honour_paging`` [guess]: apply ``p_num``/``p_cnt`` (UI parameters) to API lists; False returns every row.
    - ``default_page_size`` [guess]: rows per page when ``p_cnt`` is absent; None returns every row.
    - ``single_elem_as_array`` [guess]: a one-row list is ``"elem": [{...}]``; False renders ``"elem": {...}``,
      as an XML-to-JSON converter without list hints would.
    - ``omit_empty_fields`` [guess]: a column with an empty value is left out of its ``elem``, as the XML
      serializer does not emit empty nodes.
    - ``auth_error_type`` [guess]: ``$type`` of bad credentials and of an expired or unknown session.
    - ``access_error_type`` [guess]: ``$type`` of "not allowed" (su by a non-admin, admin-only function,
      authinfo from a non-whitelisted address).
    - ``denied_list_mode`` [guess]: what an admin-only list returns to a client login: ``"error"`` (an access
      error) or ``"truncate"`` (the client's own rows only).
    - ``unknown_func_error`` [guess]: ``($type, $object)`` of an unknown or disabled function.
    - ``levels`` [guess]: the ``$level`` numbers of the admin, reseller and client logins.
    - ``client_password`` [guess]: the password every seeded client login shares, so demos can log in as one.

    Quirks of real panels (protocols.md §4.5), every one off by default:

    - ``logon_form_funcs``: calls of these functions answer the logon form (``$func: "logon"``, no
      ``elem``, no ``error``) whoever asks, as a login whose level lacks them sees it.
    - ``logon_form_on_expiry``: an expired, dropped or unknown session answers the logon form instead of
      an ``auth`` error (the session "lands on the logon form").
    - ``omit_p_elems``: lists answer without ``p_elems`` (``p_num``/``p_cnt`` are still echoed).
    - ``page_cap``: a silent page cap: ``p_cnt`` above N is served as N (offsets computed with N) while the
      answer echoes the ``p_cnt`` that was asked.
    - ``page_cap_offsets``: ``"served"`` (default: offsets in the capped size, so paging on at that size
      reads everything) or ``"asked"`` (offsets in the size asked: the rows past the cap on each page are
      never served, a lossy cap only ``p_elems`` can reveal). [guess: both are plausible for a proxy or
      a patched panel]
    - ``delete_row_after_page``: ``{func: k}``: right after the k-th page of ``func``'s list is served, the
      list's first row (on page 1, already served) is deleted, so every later row shifts back by one
      under offset paging. Once per function.
    - ``hide_every``: N > 0 leaves rows whose id is a multiple of N out of every list page while
      ``p_elems`` still counts them: the "incomplete data" a login of too low a level gets (§4.5).
    - ``missing_funcs``: these functions answer ``missed`` without ``$object`` and the panel's Russian text
      ``Не удалось найти функцию 'X'. Возможно, управляющий модуль не загружен.``
    - ``func_names``: ``{func: installed name}``: the installation serves a function under another name
      only (``{"vds": "vds.vps"}``); the usual name then answers like ``missing_funcs``.
    - ``authtype_on_calls``: request numbers (1-based, counting every request) that, when they carry a
      session, answer ``doc.error`` ``$type: "authtype"`` and drop the session.

    Fault kind ``logon_form`` (a :class:`FaultPlan` rate, drawn only when the plan names it): a session
    silently dies and its call lands on the logon form, as ``session_expiry`` does with an error.
    """

    username: str = DEMO_CREDENTIALS["username"]
    password: str = DEMO_CREDENTIALS["password"]
    reseller_username: str = "reseller"
    reseller_password: str = "demo-reseller-pass"
    reseller_project: int = 2
    client_password: str = "demo-client-pass"
    auth_keys: dict[str, str] = field(default_factory=dict)
    session_ttl: float = 3600.0
    clock: Callable[[], float] = time.time
    authinfo_whitelist: tuple[str, ...] | None = None
    honour_paging: bool = True
    default_page_size: int | None = None
    single_elem_as_array: bool = True
    omit_empty_fields: bool = True
    auth_error_type: str = "auth"
    access_error_type: str = "access"
    denied_list_mode: str = "error"
    unknown_func_error: tuple[str, str] = ("missed", "func")
    disabled_funcs: frozenset[str] = frozenset()
    logon_form_funcs: frozenset[str] = frozenset()
    logon_form_on_expiry: bool = False
    omit_p_elems: bool = False
    page_cap: int | None = None
    page_cap_offsets: str = "served"
    hide_every: int = 0
    delete_row_after_page: dict[str, int] = field(default_factory=dict)
    missing_funcs: frozenset[str] = frozenset()
    func_names: dict[str, str] = field(default_factory=dict)
    authtype_on_calls: frozenset[int] = frozenset()
    levels: dict[str, int] = field(default_factory=_default_levels)
    projects: dict[int, str] = field(default_factory=_default_projects)
    default_lang: str = "en"
    languages: tuple[str, ...] = ("en", "ru")
    currency: str = "EUR"
    host: str = "https://billing.example:1500"

    def __post_init__(self) -> None:
        if self.denied_list_mode not in ("error", "truncate"):
            raise ValueError(f"denied_list_mode must be 'error' or 'truncate', not {self.denied_list_mode!r}")
        if self.page_cap_offsets not in ("served", "asked"):
            raise ValueError(f"page_cap_offsets must be 'served' or 'asked', not {self.page_cap_offsets!r}")
        if self.page_cap is not None and self.page_cap < 1:
            raise ValueError(f"page_cap must be at least 1, not {self.page_cap}")
