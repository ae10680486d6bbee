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

    def __post_init__(self) -> None:
        if self.profile not in ("OLD", "NEW"):
            raise ValueError(f"miclinik profile must be 'OLD' or 'NEW', not {self.profile!r}")

    @property
    def is_new(self) -> bool:
        """Whether the NEW (2024-25) behaviour applies."""
        return self.profile == "NEW"

    @property
    def version(self) -> str:
        """``dolibarr_version`` reported by GET /status; the OLD number is a [guess] within v10-v17."""
        return "23.0.0-beta" if self.is_new else "11.0.5"
