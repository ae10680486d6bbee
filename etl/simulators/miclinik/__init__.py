"""Simulator of miclinik: a Dolibarr ERP REST API (``/api/index.php/...``), version profiles OLD and NEW.

Exports the uniform simulator interface: :func:`create_app`, :class:`MiclinikOptions`, :data:`STATE`
and :data:`DEMO_CREDENTIALS`. What it reproduces is protocols.md §5.1, checked against the recorded
Dolibarr 23 traffic in ``shared/fixtures/dolibarr``.

Source ids (see :mod:`etl.simulators.miclinik.population`): products keep the world product id;
third parties (entity "customer") are numbered 1.. in the order of ``world.members("miclinik")``;
orders keep the world order id (``customer_id * 4 + n``); users are the admin (1) and a few staff
members (2..). Records created through the API get the next free rowids and a negative true id.
"""

from __future__ import annotations

from etl.simulators.miclinik.app import BASE, STATE, MiclinikState, create_app
from etl.simulators.miclinik.options import DEMO_CREDENTIALS, MiclinikOptions
from etl.simulators.miclinik.population import SYSTEM
from etl.simulators.registry import SimulatedSystem, Spelling

SIMULATOR = SimulatedSystem(
    name=SYSTEM,
    base_path=BASE,
    create_app=create_app,
    state_key=STATE,
    demo_credentials=DEMO_CREDENTIALS,
    port_offset=0,
    presence=0.6,
    # Older web-form filtering left "&" and "'" stored as HTML entities, and the API returns the
    # stored text unchanged (protocols.md, "HTML entities in refs and labels").
    spelling=Spelling(transliterate=0.3, escaped_ampersand=0.5, escaped_apostrophe=0.5),
)

__all__ = ["DEMO_CREDENTIALS", "SIMULATOR", "STATE", "MiclinikOptions", "MiclinikState", "create_app"]
