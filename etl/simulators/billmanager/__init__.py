"""A simulated BILLmanager 5/6 panel (ISPsystem): ``/billmgr?func=...&out=json``.

See :mod:`etl.simulators.billmanager.store` for how source ids are assigned and
:class:`BillmanagerOptions` for the [guess] switches.
"""

from __future__ import annotations

from etl.simulators.billmanager.app import STATE, BillmanagerState, create_app
from etl.simulators.billmanager.options import DEMO_CREDENTIALS, BillmanagerOptions

__all__ = ["DEMO_CREDENTIALS", "STATE", "BillmanagerOptions", "BillmanagerState", "create_app"]
