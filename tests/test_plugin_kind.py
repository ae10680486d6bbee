"""A kind defined outside ``etl/`` (tests/toykind) is a full citizen: settings, redaction, extraction."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import structlog
import yaml

from etl.logging import configure_logging
from etl.settings import ConfigError, load_settings
from etl.simulators import registry as simulated
from etl.sources import REGISTRY
from jobs.extract import run_extract
from tests.support import ROOT, simulators, source_for, staged_keys, truth_keys
from tests.toykind import KIND, SETTINGS


def _settings_file(tmp_path: Path, source: dict) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"database_url": f"sqlite+aiosqlite:///{tmp_path}/s.db", "sources": [source]}))
    return path


def test_the_toy_kind_is_named_nowhere_in_the_product() -> None:
    """Nothing under etl/ or jobs/ mentions the toy kind: registering it is all it took."""
    assert KIND in REGISTRY and KIND in simulated.names()
    mentions = [p for d in ("etl", "jobs") for p in (ROOT / d).rglob("*.py") if KIND in p.read_text()]
    assert mentions == []


def test_settings_validate_the_toy_options_and_credentials(tmp_path: Path) -> None:
    """The toy's typed options and credentials are checked at load, with the key named."""
    settings = load_settings(_settings_file(tmp_path, SETTINGS))
    assert type(settings.sources[0].options).__name__ == "ToyOptions"
    bad_option = {**SETTINGS, "options": {"max_page": "lots"}}
    with pytest.raises(ConfigError) as failure:
        load_settings(_settings_file(tmp_path, bad_option))
    assert failure.value.key == "sources[0] (toybill).options.max_page"
    no_token = {**SETTINGS, "credentials": {"account": "acme"}}
    with pytest.raises(ConfigError) as failure:
        load_settings(_settings_file(tmp_path, no_token))
    assert failure.value.key == "sources[0] (toybill).credentials.token" and failure.value.problem == "missing"


def test_the_redactor_masks_the_toy_secret(tmp_path: Path) -> None:
    """The toy's SecretStr value and its wire header name are masked in every log line, unconfigured elsewhere."""
    settings = load_settings(_settings_file(tmp_path, SETTINGS))
    token = SETTINGS["credentials"]["token"]
    out = io.StringIO()
    configure_logging(fmt="json", secrets=settings.secret_values(), secret_names=settings.secret_names(), stream=out)
    log = structlog.get_logger()
    log.info(f"calling with {token}", **{"X-Toy-Token": "another-value"})
    log.info("request", url="http://h/toy/items?x-toy-token=fresh-value-42&after=0")
    text = out.getvalue()
    assert token not in text and "another-value" not in text and "fresh-value-42" not in text
    assert json.loads(text.splitlines()[0])["X-Toy-Token"] == "***"


async def test_the_toy_extracts_against_its_simulator(migrated_url: str, engine) -> None:
    """An extract of the toy kind stages exactly what its simulator serves (the contract suite runs it too)."""
    async with simulators([KIND], scale=80) as sims:
        source = source_for(KIND, sims[KIND].base_url, page_size=7)
        settings = load_settings(ROOT / "settings.yaml").model_copy(
            update={"database_url": migrated_url, "sources": [source]}
        )
        report = await run_extract(settings)
        assert report.status == "succeeded", report.failures()
        assert await staged_keys(engine, source.name) == truth_keys(sims[KIND].state, {"customer", "product"})
