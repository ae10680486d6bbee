"""BILLmanager settings: an admin login, and how it authenticates."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from etl.sources.base import SettingsModel


class BillmanagerCredentials(SettingsModel):
    """The panel login the ETL reads as (an administrator, to see every client)."""

    username: str = Field(min_length=1)
    password: SecretStr


class BillmanagerOptions(SettingsModel):
    """Protocol switches of one panel."""

    auth_mode: Literal["session", "authinfo"] = Field(
        "session", description="session: func=auth, renewed on expiry; authinfo: user:password in every call"
    )
    probe_func: str = Field("paymethod", min_length=1, description="a cheap list checked at open in authinfo mode")
    stage_staff_logins: bool = Field(False, description="stage func=user rows without account_id (administrators)")
