"""A simulated BILLmanager 5/6 panel (ISPsystem): ``/billmgr?func=...&out=json``.

See :mod:`etl.simulators.billmanager.store` for how source ids are assigned and
:class:`BillmanagerOptions` for the [guess] switches.
"""

from __future__ import annotations

from etl.simulators.billmanager.app import PATHS, STATE, BillmanagerState, create_app
from etl.simulators.billmanager.options import DEMO_CREDENTIALS, BillmanagerOptions
from etl.simulators.billmanager.store import SYSTEM
from etl.simulators.registry import SimulatedSystem, Spelling

SIMULATOR = SimulatedSystem(
    name=SYSTEM,
    base_path=PATHS[0],
    create_app=create_app,
    state_key=STATE,
    demo_credentials=DEMO_CREDENTIALS,
    port_offset=3,
    presence=0.5,
    spelling=Spelling(transliterate=0.4),
)

__all__ = ["DEMO_CREDENTIALS", "SIMULATOR", "STATE", "BillmanagerOptions", "BillmanagerState", "create_app"]
