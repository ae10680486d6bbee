"""BILLmanager settings: an admin login, how it authenticates, and this installation's function names."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from etl.sources.base import SettingsModel


class BillmanagerCredentials(SettingsModel):
    """The panel login the ETL reads as (an administrator, to see every client)."""

    username: str = Field(min_length=1)
    password: SecretStr


class BillmanagerFunctions(SettingsModel):
    """The list function each stream calls. Names depend on the installation (protocols.md §4.4-4.5):
    services may live under ``vds.vps`` or ``instances``; set the name here, never in code."""

    accounts: str = Field("account", min_length=1)
    users: str = Field("user", min_length=1)
    staff_users: str = Field("user", min_length=1, description="the same list as users, staff rows only")
    pricelist: str = Field("pricelist", min_length=1)
    payments: str = Field("payment", min_length=1)
    vds: str = Field("vds", min_length=1)
    soft: str = Field("soft", min_length=1)


class BillmanagerOptions(SettingsModel):
    """Protocol switches of one panel."""

    auth_mode: Literal["session", "authinfo"] = Field(
        "session", description="session: func=auth, renewed on expiry; authinfo: user:password in every call"
    )
    probe_func: str = Field("paymethod", min_length=1, description="a cheap list checked at open in authinfo mode")
    functions: BillmanagerFunctions = Field(default_factory=BillmanagerFunctions)
    # [I] p_sort/p_order are MgrList metadata (protocols.md §4.3); sending them as request parameters
    # is inferred. A stable order keeps offset pages from reshuffling between requests.
    sort_column: str | None = Field("id", description="p_sort sent with every list call; null sends none")
    sort_order: Literal["asc", "desc"] = Field("asc", description="p_order sent with p_sort")

    @model_validator(mode="before")
    @classmethod
    def _replaced_options(cls, data: Any) -> Any:
        # Named, so an old settings file says what to do instead of "extra inputs are not permitted".
        if isinstance(data, dict) and "stage_staff_logins" in data:
            raise ValueError(
                "stage_staff_logins was removed: staff logins (func=user rows without account_id) are now "
                "staged by the staff_users stream (entity staff_user); delete the option"
            )
        return data
