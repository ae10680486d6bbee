"""MikroBILL settings: the cashier login with its CRYPTO keys, the transport seam, codes and paths."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from etl.http.errors import ConfigurationError
from etl.sources.base import SettingsModel

Category = Literal["busy", "session", "auth", "permission", "not_found", "too_large", "bad_request"]
# [C] paths (protocols.md §2.2).
CLIENT_PROPERTIES = (
    "AutorizeInfo.Name",
    "AutorizeInfo.Accounts",
    "BillingInfo.Money",
    "BillingInfo.DefaultInterface",
    "StatusInfo.BlockReason",
    "StatusInfo.CurrentSpeedLimitIn",
)
# IP/MAC [C]; Login [C-code3p]; Tariff [guess]. Password is readable too but is a secret: never staged.
ACCOUNT_PROPERTIES = ("IP", "MAC", "Login", "Tariff")
# The properties the manual documents (§2.2 table): a refusal of one fails its stream. Any other
# property read (a [guess], a [C-code3p] leaf, one added in options) is optional: refused as an
# unknown path, it is staged as null and warned about once per stream and run.
DOCUMENTED_CLIENT_PROPERTIES = frozenset(CLIENT_PROPERTIES)
DOCUMENTED_ACCOUNT_PROPERTIES = frozenset({"IP", "MAC"})


class Catalogue(BaseModel):
    """A product list: the listing call, the object path and the properties read of each item."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    list: str
    base: str
    properties: tuple[str, ...]


# [guess] paths: the class reference naming the real ones is unreachable (protocols.md §6).
CATALOGUES = {
    "tariff": Catalogue(list="API.GetTariffs", base="API.Tariff", properties=("Name", "Price", "Type")),
    "service": Catalogue(list="API.GetServices", base="API.Service", properties=("Name", "Price", "Type")),
}


class MikrobillCredentials(SettingsModel):
    """What ``new MikroBILL_API(host, port, login, password[, key1, key2])`` is given.

    The CRYPTO keys are needed only when ``apicore`` runs away from the cash desk's own web
    server (protocols.md §2.1, §2.3), so they are optional here and required by
    ``options.apicore = "remote"`` (see :func:`settings_problems`)."""

    login: str = Field(min_length=1)
    password: SecretStr
    crypto_key_1: SecretStr | None = None
    crypto_key_2: SecretStr | None = None

    def crypto_keys(self) -> tuple[str, str] | None:
        """Both keys, or ``None`` when neither is given."""
        keys = [key.get_secret_value() if key else "" for key in (self.crypto_key_1, self.crypto_key_2)]
        return (keys[0], keys[1]) if any(keys) else None


class MikrobillOptions(SettingsModel):
    """Protocol switches of one MikroBILL core."""

    transport: str = Field("http-json", description="http-json, or python:<module or file.py>:<Class>")
    version: str = Field("2.0.9", description="below 2.0.9: no batch commands, one Process per property")
    batch_items: int = Field(2000, ge=1, description="paths per batch call; halved when the core refuses a size")
    # [U] for the real product: an empty table makes every non-zero code fail its call, naming it.
    codes: dict[Category, tuple[int, ...]] = Field(default_factory=dict)
    client_properties: tuple[str, ...] = CLIENT_PROPERTIES
    account_properties: tuple[str, ...] = ACCOUNT_PROPERTIES
    payments_path: str = Field("Payments", min_length=1, description="[guess] client path of the money log")
    catalogues: dict[str, Catalogue] = Field(default_factory=lambda: dict(CATALOGUES))
    client_root: Literal["API.Client", "API.Clients"] = Field(
        "API.Client", description="the client branch: API.Client (manual) or API.Clients (API page)"
    )
    apicore: Literal["remote", "cash-desk"] = Field(
        "remote", description="remote: the library runs away from the cash desk's server and needs both CRYPTO keys"
    )
    host: str | None = Field(None, description="the core's host for the vendor class (default: base_url's)")
    port: int | None = Field(None, ge=1, le=65535, description="the core's port (default: base_url's, else 7402)")

    @field_validator("transport")
    @classmethod
    def _transport(cls, value: str) -> str:
        if value != "http-json" and not re.match(r"^python:.+:[A-Za-z_]\w*$", value):
            raise ValueError("must be 'http-json' or 'python:<module or file.py>:<Class>'")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not re.match(r"^\d+(\.\d+)*$", str(value)):
            raise ValueError("must look like 2.0.9")
        return str(value)

    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split("."))


class SettingsProblem(ConfigurationError):
    """Credentials and options that cannot work together; the source ends before any call."""


def settings_problems(credentials: MikrobillCredentials, options: MikrobillOptions) -> list[str]:
    """What is wrong with credentials and options taken together (each model checks itself alone).

    Pure; the client raises the first problem at open, naming the keys, before any call."""
    given = [bool(key and key.get_secret_value()) for key in (credentials.crypto_key_1, credentials.crypto_key_2)]
    if options.apicore == "remote" and not all(given):
        missing = [name for name, ok in zip(("crypto_key_1", "crypto_key_2"), given, strict=True) if not ok]
        return [
            f"credentials.{' and credentials.'.join(missing)} required: options.apicore is 'remote' (the library "
            "runs away from the cash desk's web server); set both keys, or apicore: cash-desk"
        ]
    if given.count(True) == 1:
        return ["credentials.crypto_key_1 and crypto_key_2 go together: give both or neither"]
    return []
