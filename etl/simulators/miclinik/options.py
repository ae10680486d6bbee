"""Switches of the miclinik (Dolibarr) simulator.

The version profile picks between the two generations of Dolibarr's API code that
protocols.md §1 describes: ``OLD`` (about v10-v17) and ``NEW`` (2024-25 code, which the
recorded fixtures of Dolibarr 23 show). Choices the sources do not settle are marked [guess].
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

DEMO_CREDENTIALS: dict[str, str] = {
    "api_key": "demo-dolibarr-key",
    "login": "admin",
    "password": "admin-demo-pass",
}

Profile = Literal["OLD", "NEW"]


@dataclass
class MiclinikOptions:
    """What the simulated Dolibarr installation looks like.

    - ``profile``: ``"NEW"`` (default, as recorded) or ``"OLD"``; see protocols.md §5.1 point 4.
    - ``api_key`` / ``login`` / ``password``: the admin user's key and ``/login`` credentials.
    - ``readonly_api_key``: key of a staff user that may read products, third parties and orders
      but may not write or list users, so permission errors (401 OLD / 403 NEW) can be provoked.
    - ``production_mode``: ``API_PRODUCTION_MODE``; when on, error bodies carry no ``debug`` and
      JSON is compact; when off (Dolibarr's default) every JSON answer is pretty-printed.
    - ``bad_key_delay``: seconds slept before answering an unknown key (Dolibarr sleeps 1 s).
    - ``revoked_burst``: how many consecutive requests a fired ``revoked_key`` fault rejects.
    - ``clock``: the server's time source (Unix seconds); tests inject a controllable one.
    - ``extra_keys``: add keys no recorded Dolibarr sends, so a client learns to ignore unknown keys.
    - ``entity_noise``: spell some world product labels with ``&amp;``/``&#39;`` as stored by old
      web forms (protocols.md §1.8).
    - ``email_mandatory``: ``SOCIETE_EMAIL_MANDATORY``; POST /thirdparties then needs ``email``.
    - ``staff_count``: internal users besides the admin when populated from a world.
    - ``currency``: the company currency (orders' ``multicurrency_code``).
    - ``public_url``: the root Dolibarr builds ``online_payment_url`` from.
    - ``old_page_404_kind``: the fault kind rolled, in the OLD profile only, on list pages after the
      first; a hit answers 404 "No <x> found" as if the rows had moved away under the reader. [guess]

    Quirks seen on a real Dolibarr 23 (protocols.md §1.9):

    - ``restricted_api_key``: key of a staff user (the second; needs ``staff_count`` >= 2) who may
      read products, third parties, orders and users but lacks "see all third parties" (right
      262): GET /thirdparties answers 404 "No third parties found" and GET /orders ``[]`` (OLD:
      404 "No order found"), products list normally; reading one of them by id is 403 (OLD 401).
    - ``db_utc_offset_hours``: the database server's zone, which Dolibarr never sets for its
      session: ``t.tms`` is compared (and sorted) as that zone's local time, so a filter written
      in UTC misses edits of the last |offset| hours when the offset is negative. Rows keep their
      true instant; JSON shows ``tms`` null as recorded. 0 = UTC.
    - ``main_prod``: ``$dolibarr_main_prod=1``: GET /status leaves ``timestamp_now_utc`` out.
    - ``web_login_page``: a GET outside ``/api/index.php`` answers Dolibarr's HTML login page with
      status 200, as a base URL missing ``/api/index.php`` does (on: what the server does).
    - ``max_page_size``: a silent cap on the rows a list page holds, whatever ``limit`` asks
      (0 = none); the pagination total still counts the whole list. [guess: a proxy or a patched
      server; Dolibarr itself caps only with ``API_MAX_LIMIT``-like customisations]
    - ``create_seconds``: how long a create holds its transaction (a real server: ~0.024 s);
      while one is in flight, another third-party create with ``code_client: -1`` fails with 500
      "Duplicate value in a unique field" and another order create with 500 "Deadlock found when
      trying to get lock; try restarting transaction" (``create_conflicts``). 0 = creates never
      overlap (nothing is in flight between two requests).
    - ``create_conflicts``: whether overlapping creates fail as above (on: as observed).
    - ``create_conflict_rate`` / ``seed``: besides overlaps, this share of third-party and order
      creates fails the same way, from a seeded generator (0 = only real overlaps).
    """

    profile: Profile = "NEW"
    api_key: str = DEMO_CREDENTIALS["api_key"]
    login: str = DEMO_CREDENTIALS["login"]
    password: str = DEMO_CREDENTIALS["password"]
    readonly_api_key: str = "demo-dolibarr-readonly-key"
    production_mode: bool = False
    bad_key_delay: float = 1.0
    revoked_burst: int = 5
    clock: Callable[[], float] = field(default=time.time)
    extra_keys: bool = True
    entity_noise: bool = True
    email_mandatory: bool = False
    staff_count: int = 4
    entity: int = 1
    currency: str = "EUR"
    public_url: str = "http://127.0.0.1:18000"
    old_page_404_kind: str = "partial_batch"
    restricted_api_key: str = "demo-dolibarr-restricted-key"
    db_utc_offset_hours: float = 0.0
    main_prod: bool = False
    web_login_page: bool = True
    max_page_size: int = 0
    create_seconds: float = 0.0
    create_conflicts: bool = True
    create_conflict_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.profile not in ("OLD", "NEW"):
            raise ValueError(f"miclinik profile must be 'OLD' or 'NEW', not {self.profile!r}")
        if not -12 <= self.db_utc_offset_hours <= 14:
            raise ValueError(f"db_utc_offset_hours must be within -12..14, not {self.db_utc_offset_hours}")

    @property
    def is_new(self) -> bool:
        """Whether the NEW (2024-25) behaviour applies."""
        return self.profile == "NEW"

    @property
    def version(self) -> str:
        """``dolibarr_version`` reported by GET /status; the OLD number is a [guess] within v10-v17."""
        return "23.0.0-beta" if self.is_new else "11.0.5"
