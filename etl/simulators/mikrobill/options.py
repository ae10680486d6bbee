"""Switches of the MikroBILL simulator and the result codes it answers with.

Every non-zero number here is a [guess]: the manual only says that ``code == 0``
is success and any other number is a failure whose ``return`` holds a text
description (protocols.md §2.2). The numbers are distinct per cause so that a
client can tell the causes apart, which is what the ETL has to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

DEMO_CREDENTIALS: dict[str, str] = {
    "login": "cashier",
    "password": "demo-cashier-pass",
    "crypto_key_1": "demo-crypto-1",
    "crypto_key_2": "demo-crypto-2",
}

# Batch commands arrived in 2.0.9; the API as documented starts at 2.0.6 (protocols.md §2.1).
FIRST_API_VERSION = (2, 0, 6)
FIRST_BATCH_VERSION = (2, 0, 9)


class Code(IntEnum):
    """The ``code`` of a Process result; all non-zero values are [guess]."""

    OK = 0
    PATH_NOT_FOUND = 1
    CLIENT_NOT_FOUND = 2
    ACCOUNT_NOT_FOUND = 3
    BAD_ARGUMENT = 4
    READ_ONLY = 5
    BATCH_UNSUPPORTED = 6
    BATCH_TOO_LARGE = 7
    CORE_BUSY = 8
    OBJECT_NOT_FOUND = 9
    WRONG_PASSWORD = 10
    NO_API_RIGHTS = 11
    OUTSIDE_HOURS = 12
    IP_NOT_TRUSTED = 13
    CRYPTO_MISMATCH = 14
    NOT_CONNECTED = 15
    BAD_REQUEST = 16


def parse_version(version: str) -> tuple[int, ...]:
    """``"2.0.10"`` -> ``(2, 0, 10)``, so versions compare numerically."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        raise ValueError(f"MikroBILL version must look like 2.0.9, not {version!r}") from None


@dataclass
class MikrobillOptions:
    """What the simulated installation looks like: version, cashier profile, [guess] choices.

    - ``version``: below 2.0.9 a list/dict argument to a non-function path is refused.
    - ``id_type``: JSON type of client ids and account GUIDs in returned lists and payment
      rows, ``"number"`` as in the manual's example or ``"string"`` [guess].
    - ``max_batch_items``: the most paths one batch may expand to [guess].
    - ``cashier_api_allowed``: the cashier's "may connect through MikroBILL_API" flag.
    - ``cashier_trusted_ips``: addresses the cashier may connect from; ``None`` = any.
    - ``cashier_hours``: ``(start, end)`` UTC hours the cashier may work, end exclusive and
      wrapping past midnight when ``start > end``; ``None`` = any hour.
    - ``cashier_days``: ISO weekdays (1 = Monday) the cashier may work; ``None`` = any day.
    - ``core_latency_seconds``: a slow core; every Process call waits this long first.
    - ``client_branches``: the names the client branch answers under: ``("Client",)`` as in the
      manual's examples (default), ``("Clients",)`` for the plural of the API page only, or
      both; vendor pages disagree (protocols.md §2.3 end).
    - ``unknown_properties``: properties this installation does not know (answered "path not
      found"), named relative to their object: ``"BillingInfo.Tariff"`` under a client,
      ``"Accounts.Tariff"`` under an account, ``"Tariff.Type"``/``"Service.Type"`` in a catalogue.
      For the [guess] and [C-code3p] leaves an installation may lack.
    - ``require_crypto_keys``: True (default) stands for ``apicore`` running away from the cash
      desk's web server, where both CRYPTO keys must be given; False for ``apicore`` on the cash
      desk's own server, where a connect without them is accepted (given keys are still checked).
    """

    version: str = "2.0.9"
    id_type: Literal["number", "string"] = "number"
    max_batch_items: int = 2000
    login: str = DEMO_CREDENTIALS["login"]
    password: str = DEMO_CREDENTIALS["password"]
    crypto_key_1: str = DEMO_CREDENTIALS["crypto_key_1"]
    crypto_key_2: str = DEMO_CREDENTIALS["crypto_key_2"]
    cashier_api_allowed: bool = True
    cashier_trusted_ips: tuple[str, ...] | None = None
    cashier_hours: tuple[int, int] | None = None
    cashier_days: tuple[int, ...] | None = None
    core_latency_seconds: float = 0.0
    client_branches: tuple[str, ...] = ("Client",)
    unknown_properties: tuple[str, ...] = ()
    require_crypto_keys: bool = True

    def __post_init__(self) -> None:
        if parse_version(self.version) < FIRST_API_VERSION:
            raise ValueError(f"the Process API exists from MikroBILL 2.0.6; version {self.version} has none")
        if self.id_type not in ("number", "string"):
            raise ValueError(f"id_type must be 'number' or 'string', not {self.id_type!r}")
        if not self.client_branches or not set(self.client_branches) <= {"Client", "Clients"}:
            raise ValueError("client_branches must name Client, Clients or both")
        if self.max_batch_items < 1:
            raise ValueError("max_batch_items must be at least 1")

    @property
    def batch_supported(self) -> bool:
        """Whether this version expands list/dict arguments into batches."""
        return parse_version(self.version) >= FIRST_BATCH_VERSION

    def render_id(self, value: int) -> int | str:
        """An id as this installation writes it into JSON."""
        return str(value) if self.id_type == "string" else value
