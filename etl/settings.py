"""One typed settings model: ``settings.yaml`` plus an environment overlay.

Resolution order, highest first: ``ETL_DATABASE_URL`` / ``ETL_REPORTING_URL``,
then the YAML file (``ETL_SETTINGS`` or ``./settings.yaml``). Inside the YAML,
``${VAR}`` and ``${VAR:-default}`` are replaced from the environment before
validation, so secrets never need to live in the file. Every problem becomes
a :class:`ConfigError` naming the file, the key and the cause.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from etl.redaction import url_passwords

DEFAULT_SETTINGS_FILE = "settings.yaml"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(Exception):
    """Invalid settings: which file, which key, what is wrong."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connect: float = Field(10.0, gt=0)
    read: float = Field(120.0, gt=0)
    total: float = Field(300.0, gt=0)


def _interval(value: Any) -> Any:
    """``7d``, ``36h``, ``90m`` or anything pydantic reads as a timedelta (seconds, ISO 8601)."""
    if isinstance(value, str) and (match := re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhm])\s*", value)):
        number, unit = float(match[1]), match[2]
        return timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: number})
    return value


def _at_least_a_day(value: timedelta) -> timedelta:
    if value < timedelta(days=1):
        raise ValueError("must be at least one day (a sweep is a full scan of the stream)")
    return value


SweepInterval = Annotated[timedelta, BeforeValidator(_interval), AfterValidator(_at_least_a_day)]


class SourceSettings(BaseModel):
    """One billing system installation; several of one kind may coexist.

    ``credentials`` and ``options`` arrive as mappings and leave validation as the kind's own
    typed models (``Credentials`` and ``Options`` of its :class:`~etl.sources.base.SourceDefinition`),
    looked up in the source registry when the settings are validated, so any kind registered by
    then (a built-in or a plug-in) is checked the same way, with the key named on error."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    kind: str
    base_url: str
    enabled: bool = True
    credentials: Any = Field(default_factory=dict, validate_default=True)
    concurrency: int = Field(4, ge=1, le=64)
    rate_limit: float = Field(50.0, gt=0, description="requests per second")
    page_size: int = Field(100, ge=1, le=10_000)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_attempts: int = Field(8, ge=1, le=50)
    backoff_initial: float = Field(0.5, ge=0, description="seconds before the first retry")
    backoff_max: float = Field(30.0, ge=0, description="longest pause between retries")
    retry_after_max: float = Field(120.0, ge=0, description="longest Retry-After honoured")
    call_budget: float = Field(900.0, gt=0, description="seconds one call may spend on all its attempts")
    # Redirects carry headers and bodies (API keys, passwords) to wherever they point, so none is
    # followed unless asked; "same_host" follows a few within one origin (etl.http.transport).
    follow_redirects: Literal["never", "same_host"] = "never"
    # Counted after decompression: gzip makes a Dolibarr page ~80x smaller on the wire, and a page of
    # 2,000 rows of ~3.5 KB is ~7 MB decoded, so 64 MiB leaves room for big pages and stops a bomb.
    max_response_bytes: int = Field(64 * 2**20, ge=1024, description="largest decoded response body")
    options: Any = Field(default_factory=dict, validate_default=True)
    # Deletion guard (etl.pipeline.deletions): a complete full scan that would mark more than this
    # share of a stream's live rows (streams of more than min_rows_for_fraction rows), or every
    # one of them, is held for an operator instead of applied.
    max_delete_fraction: float = Field(0.2, ge=0, le=1)
    min_rows_for_fraction: int = Field(50, ge=0)
    max_rereads: int = Field(3, ge=0, le=20, description="re-read passes when offset pages shift mid-scan")
    full_scan_every: dict[str, SweepInterval] = Field(
        default_factory=dict, description="per stream: full scan when the last one is older (e.g. 7d, 36h)"
    )
    # Scan bounds (etl.pipeline.bounds): a pass reading more than factor x (the larger of the stream's
    # live rows and the server's stated total) + slack records, or pages to match, stops with an
    # error, deleting nothing; its checkpoint stays, so raising a bound and running again continues.
    scan_bound_factor: float = Field(3.0, ge=1)
    scan_bound_slack: int = Field(10_000, ge=0)
    # A stream with no page for this long stops, resumable (a trickling or hung server). A first scan
    # of 2M orders from a real Dolibarr takes ~50 minutes, so this bounds silence, not the scan.
    stall_timeout: float = Field(600.0, gt=0, description="seconds without a page before a stream stops")
    # A record longer than this (its stored JSON text) is rejected, kept truncated with the reason.
    max_record_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    # Throughput (etl.pipeline.extract). A keyset stream's scan is split into this many id ranges read
    # at once (0: as many as ``concurrency``; 1: one request in flight, for a server that ignores an
    # upper bound on its id filter). ``concurrency`` and ``rate_limit`` still bound the whole source.
    partitions: int = Field(0, ge=0, le=64)
    # One staging transaction holds pages until any bound is reached, so a checkpoint commits with
    # its rows without paying a commit per page; a kill loses at most this much, refetched next run.
    commit_rows: int = Field(5_000, ge=1)
    commit_bytes: int = Field(8 * 2**20, ge=1024)
    commit_ms: float = Field(250.0, gt=0)
    # Fetched pages wait for the writer in a queue of at most this many bytes of records per stream.
    queue_bytes: int = Field(16 * 2**20, ge=1024)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        from etl.sources import registry

        if value not in registry.kinds():
            raise ValueError(f"unknown source kind {value!r} (expected one of {', '.join(registry.kinds())})")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value or ""):
            raise ValueError("must be an http:// or https:// URL")
        if "@" in re.split(r"[?#]", value, maxsplit=1)[0]:
            # Userinfo would ride along in every log line and error that shows the URL; the message
            # never repeats the value, which holds the password.
            raise ValueError(
                "must not carry credentials (user:password@host): put them under this source's "
                "credentials: mapping, as ${ENV_VAR} references"
            )
        return value.rstrip("/")

    @field_validator("credentials", "options")
    @classmethod
    def _typed_by_kind(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind is None:  # the kind itself is wrong; that error is reported
            return value
        from etl.sources import registry

        definition = registry.get(kind)
        model = definition.credentials if info.field_name == "credentials" else definition.options
        if isinstance(value, model):
            return value
        if isinstance(value, BaseModel):
            value = value.model_dump()
        return model.model_validate(value if value is not None else {})

    @model_validator(mode="after")
    def _credentials_fit_options(self) -> SourceSettings:
        from etl.sources import registry

        check = registry.get(self.kind).check
        problems = check(self.credentials, self.options) if check else []
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def secret_values(self) -> list[str]:
        """Every ``SecretStr`` value of this source's credentials and options."""
        return [*_secrets_in(self.credentials), *_secrets_in(self.options)]


def _secrets_in(value: Any) -> list[str]:
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, BaseModel):
        return [s for name in type(value).model_fields for s in _secrets_in(getattr(value, name))]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _secrets_in(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _secrets_in(item)]
    return []


class Settings(BaseSettings):
    """Everything the ETL reads at start; invalid values stop it with the key named."""

    model_config = SettingsConfigDict(env_prefix="ETL_", extra="forbid")
    database_url: str = "sqlite+aiosqlite:///./var/staging.db"
    reporting_url: str = "sqlite+aiosqlite:///./var/reporting.db"
    log_level: str = "info"
    sources: list[SourceSettings] = Field(default_factory=list)
    schedules: dict[str, Any] = Field(default_factory=dict)
    writeback: dict[str, Any] = Field(default_factory=dict)
    settings_file: str = Field(DEFAULT_SETTINGS_FILE, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the YAML file, which arrives as init kwargs.
        return (env_settings, init_settings)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        # Checked here, not at logging set-up, so a typo is the one-line error naming the key.
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"unknown level {value!r} (expected one of {', '.join(LOG_LEVELS)})")
        return value.lower()

    @field_validator("database_url", "reporting_url")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        if not re.match(r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://", value):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @model_validator(mode="after")
    def _unique_source_names(self) -> Settings:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} is used twice")
            seen.add(source.name)
        return self

    def source(self, name: str) -> SourceSettings:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    def secret_values(self) -> list[str]:
        """Every configured secret value, for the redactor."""
        values = [secret for source in self.sources for secret in source.secret_values()]
        values += [password for url in (self.database_url, self.reporting_url) for password in url_passwords(url)]
        return [v for v in values if len(v) >= 4]

    def secret_names(self) -> list[str]:
        """Field names that hold secrets in the configured kinds, for the redactor."""
        from etl.sources import registry

        return sorted({name for kind in {s.kind for s in self.sources} for name in registry.get(kind).secret_names()})


def settings_path() -> Path:
    return Path(os.environ.get("ETL_SETTINGS", DEFAULT_SETTINGS_FILE))


def load_settings(path: Path | None = None) -> Settings:
    """Read, interpolate and validate the settings file, or raise :class:`ConfigError`."""
    # Imported here: etl.settings_file raises this module's ConfigError.
    from etl.settings_file import interpolate, read_settings_file

    path = path or settings_path()
    data = interpolate(read_settings_file(path), str(path))
    try:
        return Settings(**data, settings_file=str(path))
    except ValidationError as exc:
        error = exc.errors()[0]
        key = _dotted(error["loc"], data)
        raise ConfigError(str(path), key, _problem(error, key)) from None


def _dotted(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        else:
            parts.append(str(item))
    key = ".".join(parts)
    # Name the source by its name as well as its index: "sources[1] (billing2).kind".
    match = re.match(r"^sources\[(\d+)\]", key)
    if match and isinstance(data.get("sources"), list) and int(match.group(1)) < len(data["sources"]):
        entry = data["sources"][int(match.group(1))]
        if isinstance(entry, dict) and entry.get("name"):
            key = key.replace(match.group(0), f"{match.group(0)} ({entry['name']})", 1)
    return key


def _problem(error: dict[str, Any], key: str) -> str:
    if error["type"] == "missing":
        return "missing"
    if error["type"] == "extra_forbidden":
        return "unknown key"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] not in ("value_error", "assertion_error") and "input" in error and not key.endswith("credentials"):
        shown = error["input"]
        if isinstance(shown, str | int | float | bool) and not _secret_key(key):
            message = f"{message} (got {shown!r})"
    return message


def _secret_key(key: str) -> bool:
    from etl.redaction import REDACTOR

    return ".credentials" in key or REDACTOR.is_secret_name(key.rsplit(".", 1)[-1])
