"""A toy fifth billing system, defined entirely in the test tree.

It proves the source interface's promise: a new kind needs one source package and one
simulator, registered through the same public calls the built-in kinds use
(:func:`etl.sources.register`, :func:`etl.simulators.registry.register`), and no edit
anywhere else. ``tests/conftest.py`` imports this package, so every test (the contract
suite included) sees the kind ``toybill``.
"""

from __future__ import annotations

from etl.simulators import registry as simulated
from etl.sources import register
from tests.support import EXTRA_SOURCE_SETTINGS
from tests.toykind.simulator import SIMULATOR
from tests.toykind.source import SOURCE

KIND = "toybill"
# What a settings file would say for this kind (the shipped settings.yaml knows only the built-ins).
SETTINGS = {
    "name": "toybill",
    "kind": KIND,
    "base_url": "http://127.0.0.1:18009/toy",
    "credentials": {"account": "acme", "token": "toy-token-7f3a9c"},
    "page_size": 25,
    "options": {"listing": "items", "probe": "ping"},
}

register(SOURCE)
if KIND not in simulated.names():
    simulated.register(SIMULATOR)
EXTRA_SOURCE_SETTINGS[KIND] = SETTINGS
