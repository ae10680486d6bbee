"""BILLmanager (ISPsystem): the panel's ``func=...&out=json`` API, read as an admin login.

See :mod:`etl.sources.billmanager.streams` for which function feeds which stream and
:mod:`etl.sources.billmanager.client` for the two authentication modes.
"""

from __future__ import annotations

from etl.sources.base import SourceDefinition
from etl.sources.billmanager.client import BillmanagerClient
from etl.sources.billmanager.config import BillmanagerCredentials, BillmanagerOptions
from etl.sources.billmanager.streams import (
    AccountsStream,
    PaymentsStream,
    PricelistStream,
    SoftStream,
    StaffUsersStream,
    UsersStream,
    VdsStream,
)

SOURCE = SourceDefinition(
    kind="billmanager",
    client_class=BillmanagerClient,
    streams=(AccountsStream, UsersStream, StaffUsersStream, PricelistStream, PaymentsStream, VdsStream, SoftStream),
    credentials=BillmanagerCredentials,
    options=BillmanagerOptions,
    # The session id travels as the form field "auth"; authinfo carries the password.
    wire_secrets=("auth", "authinfo", "sid"),
    notes={
        "incremental": "full scan + hash diff: no list function filters on a modification time",
        "auth": "options.auth_mode: session (func=auth, renewed on expiry) or authinfo (user:pass in the form body)",
        "paging": "p_num/p_cnt (+ p_sort/p_order [I]); completeness from p_elems and $func, see paging.py",
        "functions": "options.functions.<stream>: the installation's list function names",
    },
)
