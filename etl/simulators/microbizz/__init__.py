"""Microbizz simulator: the JSON-envelope API of the Danish field-service system (protocols.md §3, §5.3).

One endpoint, ``/api/endpoint.php``, takes an envelope of commands in form field
``json`` and answers one result per command. The tenant's customers, products,
invoice lines and todos are rendered on demand from the shared world; writes go
to an overlay. See :mod:`.population` for the id scheme and :mod:`.store` for how
chunked ``…ByLastChange`` sequences stay stable while records change.
"""

from __future__ import annotations

from etl.simulators.microbizz.app import PATH, STATE, create_app
from etl.simulators.microbizz.options import DEMO_CREDENTIALS, MicrobizzOptions
from etl.simulators.microbizz.population import SYSTEM
from etl.simulators.microbizz.state import MicrobizzState
from etl.simulators.registry import SimulatedSystem, Spelling

SIMULATOR = SimulatedSystem(
    name=SYSTEM,
    base_path=PATH,
    create_app=create_app,
    state_key=STATE,
    demo_credentials=DEMO_CREDENTIALS,
    port_offset=2,
    presence=0.5,
    spelling=Spelling(transliterate=0.9),
)

__all__ = ["DEMO_CREDENTIALS", "SIMULATOR", "STATE", "MicrobizzOptions", "MicrobizzState", "create_app"]
