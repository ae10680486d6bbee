"""The registry of simulated kinds: built-ins in a fixed order, extras registered and served like them."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from etl.simulators import registry
from etl.simulators.faults import FaultPlan
from etl.simulators.noise import spell
from etl.simulators.registry import BUILTIN, SimulatedSystem, Spelling, UnknownSystemError
from etl.simulators.serve import running_simulators
from etl.simulators.truth import write_truth
from etl.simulators.world import TruthRow, World

# Digests of World(seed=7, scale=300) as generated before the registry existed: every built-in's
# members with their spellings, and the truth file (source ids). A change here changes every world.
SPELLED_MEMBERS_7_300 = "54e5eb0b0fccc423bbd18bba281b0eb8ac571c50eb7ccc3f52c730de1f3e28f0"
# Since issue 14 the truth also lists BILLmanager's staff login (``billmanager,staff_user,1,0``, now
# staged by the staff_users stream): the one line added to the file of before, checked by diff.
TRUTH_7_300 = "92e4af93c31578844f27ba434d25760fe3aaea6d2324055bd0d5edf2aa3a91d9"


@dataclass
class EchoState:
    """The tiny test kind's state: the customers it knows and the paths it was asked for."""

    members: list[int]
    request_log: list[str] = field(default_factory=list)

    def truth(self) -> Iterator[TruthRow]:
        for customer_id in self.members:
            yield TruthRow("echo", "customer", f"E{customer_id}", customer_id)


ECHO_STATE = web.AppKey("echo_state", EchoState)


def create_echo_app(world: World | None, *, faults: FaultPlan | None = None, options: Any = None) -> web.Application:
    """A one-route app listing the world's echo members under ``/echo/customers``."""
    state = EchoState(list(world.members("echo")) if world else [])

    async def customers(request: web.Request) -> web.Response:
        state.request_log.append(request.path)
        return web.json_response({"ids": state.members})

    app = web.Application()
    app[ECHO_STATE] = state
    app.router.add_get("/echo/customers", customers)
    return app


ECHO = SimulatedSystem(
    name="echo",
    base_path="/echo",
    create_app=create_echo_app,
    state_key=ECHO_STATE,
    demo_credentials={"token": "demo-echo-token"},
    presence=0.3,
    spelling=Spelling(transliterate=1.0),
)


@pytest.fixture
def echo() -> Iterator[SimulatedSystem]:
    with registry.registered(ECHO) as system:
        yield system


def builtin_members(world: World) -> dict[str, list[int]]:
    return {name: list(world.members(name)) for name in BUILTIN}


def spelled_members_digest(world: World) -> str:
    digest = hashlib.sha256()
    for name in BUILTIN:
        for customer_id in world.members(name):
            spelled = spell(world.seed, world.customer(customer_id), name)
            digest.update(repr((name, customer_id, astuple(spelled))).encode())
    return digest.hexdigest()


def test_builtins_come_first_in_their_fixed_order_and_each_package_declares_itself() -> None:
    """``names()`` starts with the four built-ins in order, and each resolves to its own package's SIMULATOR."""
    assert registry.names()[:4] == ["miclinik", "mikrobill", "microbizz", "billmanager"]
    for offset, name in enumerate(BUILTIN):
        system = registry.get(name)
        assert system.name == name and system.port_offset == offset
        assert system is sys.modules[f"etl.simulators.{name}"].SIMULATOR
    assert registry.get("miclinik").base_path == "/api/index.php"


def test_world_and_noise_import_no_system_package() -> None:
    """Importing the world, the noise and the server loads no simulated kind's package until one is asked for."""
    probe = (
        "import json, sys, etl.simulators.noise, etl.simulators.serve, etl.simulators.truth;"
        "print(json.dumps([m.split('.')[2] for m in sys.modules if m.startswith('etl.simulators.')]))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert not set(json.loads(loaded)) & set(BUILTIN), loaded


def test_registered_kind_is_listed_after_the_builtins_and_gone_after_the_block() -> None:
    """A kind registered for a block is listed and found inside it, and unknown again after it."""
    # Other extras may be registered for the whole session (the test tree's toy kind): compare against them.
    existing = registry.names()
    with registry.registered(ECHO):
        assert registry.names() == [*existing, "echo"]
        assert registry.get("echo") is ECHO
        assert registry.port_offsets()["echo"] == max(registry.port_offset(name) for name in existing) + 1
    assert registry.names() == existing
    with pytest.raises(UnknownSystemError, match="unknown simulated system 'echo'; choose from miclinik"):
        registry.get("echo")


def test_register_refuses_taken_names_and_ports_and_builtins_stay(echo: SimulatedSystem) -> None:
    """Registering a taken name or explicit port offset fails, and built-ins cannot be unregistered."""
    with pytest.raises(ValueError, match="already registered"):
        registry.register(echo)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(SimulatedSystem("miclinik", "", create_echo_app, ECHO_STATE))
    with pytest.raises(ValueError, match="taken by mikrobill"):
        registry.register(SimulatedSystem("other", "", create_echo_app, ECHO_STATE, port_offset=1))
    with pytest.raises(ValueError, match="built in"):
        registry.unregister("billmanager")
    with pytest.raises(KeyError):
        registry.unregister("never_registered")
    assert registry.names()[: len(BUILTIN)] == list(BUILTIN) and registry.names()[-1] == "echo"


def test_kinds_without_a_port_offset_take_the_lowest_free_ones(echo: SimulatedSystem) -> None:
    """An extra without an explicit offset skips every offset already claimed, explicit ones included."""
    existing = registry.port_offsets()
    gap = max(existing.values()) + 1
    pinned = SimulatedSystem("pinned", "", create_echo_app, ECHO_STATE, port_offset=gap + 1)
    floating = SimulatedSystem("floating", "", create_echo_app, ECHO_STATE)
    later = SimulatedSystem("later", "", create_echo_app, ECHO_STATE)
    with registry.registered(pinned), registry.registered(floating), registry.registered(later):
        assert registry.port_offsets() == existing | {"pinned": gap + 1, "floating": gap, "later": gap + 2}
    assert existing["miclinik"] == 0 and existing["billmanager"] == 3


def test_registration_leaves_the_builtin_world_as_it_always_was() -> None:
    """The built-ins' members, spellings and source ids for a seed stay what they were before any registration."""
    before = builtin_members(World(seed=7, scale=300))
    # Presence 0 makes every "present nowhere" tie-break visible if extras took part in it.
    absent = SimulatedSystem("absent", "", create_echo_app, ECHO_STATE, presence=0.0)
    with registry.registered(ECHO), registry.registered(absent):
        world = World(seed=7, scale=300)
        assert builtin_members(world) == before
        assert spelled_members_digest(world) == SPELLED_MEMBERS_7_300
        assert list(world.members("absent")) == []


def test_truth_file_of_the_builtins_is_unchanged(tmp_path: Path, echo: SimulatedSystem) -> None:
    """The built-ins' ground-truth file for seed 7 and 300 customers is byte for byte the one from before."""
    write_truth(World(seed=7, scale=300), tmp_path / "truth.csv")
    assert hashlib.sha256((tmp_path / "truth.csv").read_bytes()).hexdigest() == TRUTH_7_300


def test_registered_kind_gets_its_own_deterministic_members(tmp_path: Path, echo: SimulatedSystem) -> None:
    """An extra's members follow its presence share, repeat for the seed, and reach the truth file and the noise."""
    world = World(seed=7, scale=2000)
    members = list(world.members("echo"))
    assert 0.25 * 2000 < len(members) < 0.35 * 2000
    assert members == list(World(seed=7, scale=2000).members("echo"))
    assert members != list(World(seed=8, scale=2000).members("echo"))
    russian = next(world.customer(cid) for cid in members if world.customer(cid).locale == "ru")
    assert spell(world.seed, russian, "echo").last_name.isascii()
    counts = write_truth(world, tmp_path / "truth.csv", ["echo"])
    with (tmp_path / "truth.csv").open() as handle:
        assert [int(row["true_id"]) for row in csv.DictReader(handle)] == members
    assert counts == {"echo": len(members)}


async def test_running_simulators_serve_a_registered_kind_behind_the_fault_proxy(echo: SimulatedSystem) -> None:
    """A registered kind listens on a real socket at its base URL, with its state, credentials and fault plan."""
    world = World(seed=7, scale=300)
    async with (
        running_simulators(["echo"], world=world, faults="none", seed=7, base_port=0) as running,
        aiohttp.ClientSession() as session,
    ):
        sim = running["echo"]
        assert sim.base_url == f"{sim.origin}/echo" and running.base_urls == {"echo": sim.base_url}
        assert sim.credentials == {"token": "demo-echo-token"} and "token=demo-echo-token" in running.table()
        async with session.get(f"{sim.base_url}/customers") as response:
            assert response.status == 200
            assert (await response.json())["ids"] == list(world.members("echo"))
        assert sim.state.request_log == ["/echo/customers"]
        running.plans["echo"].rates["proxy_429"] = 1.0
        async with session.get(f"{sim.base_url}/customers") as response:
            assert (response.status, response.content_type) == (429, "text/html")
        assert sim.state.request_log == ["/echo/customers"] and sim.plan.fired == {"proxy_429": 1}


async def test_running_simulators_refuse_an_unknown_kind_before_serving_anything() -> None:
    """Asking for an unregistered kind fails with the known names listed, before any server starts."""
    with pytest.raises(UnknownSystemError, match="choose from miclinik, mikrobill, microbizz, billmanager"):
        async with running_simulators(["miclinik", "echo"], world=None, base_port=0):
            pass
