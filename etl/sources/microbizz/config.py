"""Microbizz settings: the contract and its identification, and the tenant's command names."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from etl.sources.base import SettingsModel
from etl.sources.microbizz.envelope import CREDENTIAL_WORDS, ENVELOPE_ATTEMPTS

# An hour: the changetime filter is strictly "after" a watermark truncated to the second, and a
# tenant speaking local time repeats an hour on the autumn DST night (protocols.md §3.5).
MIN_OVERLAP_SECONDS = 3600


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
    """Names this tenant's API uses where protocols.md could only infer them, and how far to trust it.

    - ``watermark_overlap_seconds``: the next incremental scan starts this long before the
      server's receipt time of the last one (default and minimum 3600: a change in the same
      second as the watermark, and one in the repeated hour of a DST night, are read again).
    - ``credential_words``: an envelope refused with a reason containing one of these words
      (case-insensitive) is bad credentials and ends the source; any other unrecognised
      envelope refusal is retried ``envelope_attempts`` times, then reported as a server error.
    - ``resumekey_restarts``: how often one scan may restart its chunk sequence at the same
      date/time after a call with a resumekey fails while the same call without it succeeds.
    """

    remoteagent: str = Field("billing-etl", min_length=1, description="names this ETL to Ventu's support")
    users_command: str = Field("GetUsersByLastChange", min_length=1, description="[I] name of the users sync command")
    todos_key: str = Field("todos", min_length=1, description="[I] output key of GetTodosByLastChange")
    watermark_overlap_seconds: int = Field(
        MIN_OVERLAP_SECONDS, ge=MIN_OVERLAP_SECONDS, description="re-read window before the last receipt time"
    )
    credential_words: tuple[str, ...] = Field(
        CREDENTIAL_WORDS, description="words marking an envelope refusal as bad credentials"
    )
    envelope_attempts: int = Field(ENVELOPE_ATTEMPTS, ge=1, le=20, description="tries of an unrecognised failure")
    resumekey_restarts: int = Field(3, ge=0, le=20, description="restarts of a chunk sequence per scan")
