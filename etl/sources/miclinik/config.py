"""miclinik settings: credentials (an API key, or a login that obtains one) and protocol switches."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator

from etl.sources.base import SettingsModel


class MiclinikCredentials(SettingsModel):
    """``api_key`` (sent as ``DOLAPIKEY``), or ``login`` + ``password`` exchanged for one by ``POST /login``."""

    api_key: SecretStr | None = None
    login: str | None = None
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _one_way_in(self) -> MiclinikCredentials:
        has_key = bool(self.api_key and self.api_key.get_secret_value())
        has_login = bool(self.login and self.password and self.password.get_secret_value())
        if not (has_key or has_login):
            raise ValueError("credentials for a miclinik source need api_key or login+password")
        return self


class MiclinikOptions(SettingsModel):
    """Protocol switches of a Dolibarr-compatible server."""

    profile: Literal["new", "old"] = Field("new", description="new: Dolibarr >= 19; old: <= 18")
    tms_overlap_seconds: float = Field(300, ge=0, description="re-read window before the server clock")
    # Dolibarr compares tms in the database session's zone, which it never sets ([U] per server).
    tms_timezone: str = Field("UTC", description="zone the server's database compares tms in")
    confirm_empty_pages: int = Field(1, ge=0, description="extra asks of a 404 'none found' after a full page")
    auth_confirmations: int = Field(6, ge=1, description="attempts a 401 gets before it is taken as final")

    @field_validator("profile", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("tms_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value
