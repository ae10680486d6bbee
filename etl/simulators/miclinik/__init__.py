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

from etl.simulators.miclinik.app import STATE, MiclinikState, create_app
from etl.simulators.miclinik.options import DEMO_CREDENTIALS, MiclinikOptions

__all__ = ["DEMO_CREDENTIALS", "STATE", "MiclinikOptions", "MiclinikState", "create_app"]
