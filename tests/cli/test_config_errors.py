"""Bad settings stop `etl` with exit 2 and one line naming the file, the key and the problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "settings.yaml").read_text()


def run_etl(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "etl", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=60
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("case", "text", "expected"),
    [
        ("yaml_syntax", GOOD.replace("sources:\n", "sources: [\n", 1), ["YAML syntax error at line"]),
        ("unknown_kind", GOOD.replace("kind: microbizz", "kind: microbiz"), ["sources[2] (microbizz).kind", "unknown source kind 'microbiz'"]),
        ("missing_url", GOOD.replace("    base_url: http://127.0.0.1:18003/billmgr\n", ""), ["sources[3] (billmanager).base_url", "missing"]),
        ("bad_url", GOOD.replace("http://127.0.0.1:18002/api/endpoint.php", "ftp://x"), ["sources[2] (microbizz).base_url", "http"]),
        ("unset_env", GOOD.replace("${MICLINIK_API_KEY:-demo-dolibarr-key}", "${ETL_TEST_UNSET_KEY}"), ["sources[0].credentials.api_key", "ETL_TEST_UNSET_KEY is not set"]),
        ("missing_credentials", GOOD.replace("      crypto_key_2: ${MIKROBILL_CRYPTO_KEY_2:-demo-crypto-2}\n", ""), ["sources[1] (mikrobill)", "credentials.crypto_key_2 required: options.apicore is 'remote'"]),
        ("missing_login_or_key", GOOD.replace("      api_key: ${MICLINIK_API_KEY:-demo-dolibarr-key}\n", "      login: admin\n"), ["sources[0] (miclinik).credentials", "api_key or login+password"]),
        ("microbizz_half_identity", GOOD.replace("      password: ${MICROBIZZ_PASSWORD:-demo-microbizz-pass}\n", ""), ["sources[2] (microbizz).credentials", "accesstoken"]),
        ("unknown_option_miclinik", GOOD.replace("tms_overlap_seconds: 43500", "tms_overlap: 43500"), ["sources[0] (miclinik).options.tms_overlap", "unknown key"]),
        ("unknown_option_mikrobill", GOOD.replace("transport: http-json", "transport: http-json\n      item_retries: 3"), ["sources[1] (mikrobill).options.item_retries", "unknown key"]),
        ("unknown_option_billmanager", GOOD.replace("auth_mode: session", "auth_mode: session\n      authmode: x"), ["sources[3] (billmanager).options.authmode", "unknown key"]),
        ("unknown_option_microbizz", GOOD.replace("      envelope_attempts: 3\n", "      envelope_attempts: 3\n      users_cmd: X\n"), ["sources[2] (microbizz).options.users_cmd", "unknown key"]),
        ("bad_timezone", GOOD.replace("tms_timezone: UTC", "tms_timezone: Mars/Olympus"), ["sources[0] (miclinik).options.tms_timezone", "unknown time zone 'Mars/Olympus'"]),
        ("bad_overlap_type", GOOD.replace("tms_overlap_seconds: 43500", "tms_overlap_seconds: soon"), ["sources[0] (miclinik).options.tms_overlap_seconds", "valid number", "'soon'"]),
        ("bad_auth_mode", GOOD.replace("auth_mode: session", "auth_mode: cookie"), ["sources[3] (billmanager).options.auth_mode", "'session' or 'authinfo'"]),
        ("bad_code_category", GOOD.replace("busy: [8]", "bussy: [8]"), ["sources[1] (mikrobill).options.codes.bussy", "busy"]),
        ("bad_transport", GOOD.replace("transport: http-json", "transport: carrier-pigeon"), ["sources[1] (mikrobill).options.transport", "http-json"]),
    ],
)  # fmt: skip
def test_bad_settings_exit_2_with_one_line(tmp_path: Path, case: str, text: str, expected: list[str]) -> None:
    """Each kind of broken settings file gives exit 2 and one line with file, key and cause."""
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    line = _one_line_error(run_etl("--settings", str(path), "config", "check"))
    assert str(path) in line
    for fragment in expected:
        assert fragment in line


def test_settings_file_from_environment(tmp_path: Path) -> None:
    """ETL_SETTINGS selects the file that is read."""
    path = tmp_path / "other.yaml"
    path.write_text(GOOD.replace("kind: miclinik", "kind: nope"))
    line = _one_line_error(run_etl("config", "check", env={"ETL_SETTINGS": str(path)}))
    assert str(path) in line and "unknown source kind 'nope'" in line


def test_unreachable_database_exit_2() -> None:
    """An unreachable database URL is a configuration error naming the key, without a traceback."""
    url = "postgresql+asyncpg://postgres:hunter2secret@127.0.0.1:1/test"
    line = _one_line_error(run_etl("db", "current", env={"ETL_DATABASE_URL": url}))
    assert "database_url" in line and "unreachable" in line and "127.0.0.1:1" in line
    assert "hunter2secret" not in line


def test_config_check_masks_secrets() -> None:
    """`etl config check` prints the resolved settings with every credential masked."""
    env = {"MICLINIK_API_KEY": "very-secret-key-123", "ETL_REPORTING_URL": "sqlite+aiosqlite://u:db-pass-4567@/x.db"}
    result = run_etl("config", "check", env=env)
    assert result.returncode == 0, result.stderr
    assert "very-secret-key-123" not in result.stdout
    assert "demo-cashier-pass" not in result.stdout and "demo-crypto-1" not in result.stdout
    assert "db-pass-4567" not in result.stdout and "u:***@" in result.stdout
    assert '"kind": "miclinik"' in result.stdout


def test_db_upgrade_and_current_show_head(database_url: str) -> None:
    """`etl db upgrade` creates the schema on the configured database and `etl db current` shows head."""
    env = {"ETL_DATABASE_URL": database_url}
    assert run_etl("db", "upgrade", env=env).returncode == 0
    current = run_etl("db", "current", env=env)
    assert current.returncode == 0 and "(head)" in current.stdout
    down = run_etl("db", "downgrade", "base", env=env)
    assert down.returncode == 0 and "base" in down.stdout


def test_usage_error_exit_2() -> None:
    """An unknown option is a usage error: exit 2."""
    assert run_etl("runs", "--no-such-option").returncode == 2
