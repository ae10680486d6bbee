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
from typing import Annotated, Any

import yaml
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

DEFAULT_SETTINGS_FILE = "settings.yaml"
_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


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
        values += [password for url in (self.database_url, self.reporting_url) if (password := _url_password(url))]
        return [v for v in values if len(v) >= 4]

    def secret_names(self) -> list[str]:
        """Field names that hold secrets in the configured kinds, for the redactor."""
        from etl.sources import registry

        return sorted({name for kind in {s.kind for s in self.sources} for name in registry.get(kind).secret_names()})


def _url_password(url: str) -> str | None:
    match = re.match(r"^[^:]+://[^:/@]+:([^@]+)@", url)
    return match.group(1) if match else None


def settings_path() -> Path:
    return Path(os.environ.get("ETL_SETTINGS", DEFAULT_SETTINGS_FILE))


def load_settings(path: Path | None = None) -> Settings:
    """Read, interpolate and validate the settings file, or raise :class:`ConfigError`."""
    path = path or settings_path()
    raw = _read_yaml(path)
    data = _interpolate(raw, str(path), "")
    try:
        return Settings(**data, settings_file=str(path))
    except ValidationError as exc:
        error = exc.errors()[0]
        key = _dotted(error["loc"], data)
        raise ConfigError(str(path), key, _problem(error, key)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read settings file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(str(path), "", f"YAML syntax error at {where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "top level must be a mapping")
    return data


def _interpolate(value: Any, file: str, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, file, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, file, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(file, key, f"environment variable {name} is not set")

    return _REFERENCE.sub(replace, value)


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
