"""Microbizz settings: the contract and its identification, and the tenant's command names."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from etl.sources.base import SettingsModel


class MicrobizzCredentials(SettingsModel):
    """``contract`` plus either ``accesstoken`` (app-connect) or ``apikey`` + ``username`` + ``password``."""

    contract: str = Field(min_length=1)
    apikey: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    accesstoken: SecretStr | None = None

    @field_validator("contract", mode="before")
    @classmethod
    def _contract_text(cls, value: object) -> object:
        return str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _identified(self) -> MicrobizzCredentials:
        def given(secret: SecretStr | None) -> bool:
            return bool(secret and secret.get_secret_value())

        if not (given(self.accesstoken) or (given(self.apikey) and self.username and given(self.password))):
            raise ValueError("credentials for a microbizz source need contract+apikey+username+password or accesstoken")
        return self


class MicrobizzOptions(SettingsModel):
    """Names this tenant's API uses where protocols.md could only infer them."""

    remoteagent: str = Field("billing-etl", min_length=1, description="names this ETL to Ventu's support")
    users_command: str = Field("GetUsersByLastChange", min_length=1, description="[I] name of the users sync command")
    todos_key: str = Field("todos", min_length=1, description="[I] output key of GetTodosByLastChange")
