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
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

SOURCE_KINDS = ("mikrobill", "microbizz", "billmanager", "miclinik")
SourceKind = Literal["mikrobill", "microbizz", "billmanager", "miclinik"]
DEFAULT_SETTINGS_FILE = "settings.yaml"
# Logins and contract numbers identify; these authenticate, so they are masked wherever they appear.
_SECRET_CREDENTIAL = re.compile(r"pass|key|token|secret", re.IGNORECASE)
_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")

# Which credential keys each kind needs; alternatives are separated by "|".
REQUIRED_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "miclinik": ("api_key|login,password",),
    "mikrobill": ("login", "password", "crypto_key_1", "crypto_key_2"),
    "microbizz": ("contract", "apikey,username,password|accesstoken"),
    "billmanager": ("username", "password"),
}


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


class SourceSettings(BaseModel):
    """One billing system installation; several of one kind may coexist."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    kind: SourceKind
    base_url: str
    enabled: bool = True
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    concurrency: int = Field(4, ge=1, le=64)
    rate_limit: float = Field(50.0, gt=0, description="requests per second")
    page_size: int = Field(100, ge=1, le=10_000)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_attempts: int = Field(8, ge=1, le=50)
    backoff_initial: float = Field(0.5, ge=0, description="seconds before the first retry")
    backoff_max: float = Field(30.0, ge=0, description="longest pause between retries")
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value or ""):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _credentials_complete(self) -> SourceSettings:
        for requirement in REQUIRED_CREDENTIALS[self.kind]:
            options = [alt.split(",") for alt in requirement.split("|")]
            if not any(all(self.credentials.get(k) for k in keys) for keys in options):
                wanted = " or ".join("+".join(keys) for keys in options)
                raise ValueError(f"credentials for a {self.kind} source need {wanted}")
        return self

    def secret(self, key: str) -> str:
        value = self.credentials.get(key)
        return value.get_secret_value() if value else ""


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
        """Every configured secret, for the log redactor."""
        values = [
            secret.get_secret_value()
            for src in self.sources
            for key, secret in src.credentials.items()
            if _SECRET_CREDENTIAL.search(key)
        ]
        values += [password for url in (self.database_url, self.reporting_url) if (password := _url_password(url))]
        return [v for v in values if len(v) >= 4]


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
    if error["type"] == "literal_error" and key.endswith("kind"):
        return f"unknown source kind {error.get('input')!r} (expected one of {', '.join(SOURCE_KINDS)})"
    if error["type"] == "missing":
        return "missing"
    message = error["msg"].removeprefix("Value error, ")
    return message
