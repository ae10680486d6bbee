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


# 12 h 5 min: a database as far west as UTC-12 plus five minutes for writes in flight at the start.
DEFAULT_TMS_OVERLAP = 12 * 3600 + 300


class MiclinikOptions(SettingsModel):
    """Protocol switches of a Dolibarr-compatible server.

    Incremental scans filter ``(t.tms:>=:'<watermark>')``, and Dolibarr never sets the database
    session's time zone, so MariaDB reads that literal in whatever zone the database server runs
    in (protocols.md §1.9). A UTC watermark against a database at UTC-5 misses every edit of the
    last five hours; an eastern zone only re-reads. Two ways to stay safe:

    - ``tms_overlap_seconds`` (default 43,500 = 12 h 5 min): how far before the server clock the
      next scan starts. The default covers any zone down to UTC-12 without knowing it; re-read
      rows cost a request share but stage nothing (staging diffs by hash).
    - ``tms_timezone``: the zone the database really runs in, for operators who know it; the
      watermark is then written in that zone, and the overlap can drop to a few minutes (300).
    """

    profile: Literal["new", "old"] = Field("new", description="new: Dolibarr >= 19; old: <= 18")
    tms_overlap_seconds: float = Field(
        DEFAULT_TMS_OVERLAP, ge=0, description="re-read window before the server clock (12 h 5 min: zones to UTC-12)"
    )
    tms_timezone: str = Field("UTC", description="zone the server's database compares tms in (never set by Dolibarr)")
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
