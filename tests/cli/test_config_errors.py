"""Bad settings stop `etl` with exit 2 and one line naming the file, the key and the problem."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "settings.yaml").read_text()
# Nine levels of nine aliases: ~10^9 strings once expanded, from 500 bytes that PyYAML loads at once.
BILLION_LAUGHS = 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
)


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
        ("log_level_typo", GOOD.replace("log_level: info", "log_level: infoo"), ["log_level", "unknown level 'infoo'", "debug, info, warning"]),
        ("yaml_alias_bomb", BILLION_LAUGHS, ["YAML anchor refused at line 1, column 5", "anchors and aliases"]),
        ("yaml_key_twice", GOOD.replace("log_level: info", "log_level: info\nlog_level: debug"), ["YAML key repeated at line", "'log_level' is written twice"]),
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


def test_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    """A billion-laughs settings file is refused at its first anchor, in well under two seconds."""
    from etl.settings import ConfigError, load_settings

    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="anchors and aliases"):
        load_settings(path)
    assert time.monotonic() - started < 2


def test_settings_file_not_utf8_names_the_byte(tmp_path: Path) -> None:
    """A settings file that is not UTF-8 is exit 2 naming the file, the byte offset and its line."""
    data = GOOD.encode().replace(b"log_level: info", b"log_level: info  # caf\xe9", 1)
    path = tmp_path / "latin1.yaml"
    path.write_bytes(data)
    line = _one_line_error(run_etl("--settings", str(path), "config", "check"))
    offset = data.index(b"\xe9")
    line_number = data[:offset].count(b"\n") + 1
    assert str(path) in line and "not UTF-8" in line and f"byte {offset} (line {line_number})" in line


def test_unwritable_sqlite_path_exit_2(tmp_path: Path) -> None:
    """A SQLite database_url whose folder cannot be created (a file is in the way) is exit 2 naming the key."""
    (tmp_path / "afile").write_text("")
    path = tmp_path / "afile" / "staging.db"
    line = _one_line_error(run_etl("runs", env={"ETL_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}))
    assert "database_url (from ETL_DATABASE_URL)" in line and f"folder {path.parent}" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--source", "miclinik", "--source", "billing9"], ["--source billing9", "miclinik, mikrobill, microbizz, billmanager"]),
        (["--source", "miclinik", "--stream", "orders", "--stream", "ordres"], ["--stream ordres: no such stream", "(orders, products, thirdparties, users)"]),
    ],
)  # fmt: skip
def test_unknown_source_or_stream_is_a_usage_error(args: list[str], expected: list[str]) -> None:
    """`etl extract` with a source or stream that does not exist runs nothing: exit 2 listing the valid names."""
    line = _one_line_error(run_etl("extract", *args))
    assert line.startswith("usage error:")
    for fragment in expected:
        assert fragment in line


def test_unmigrated_database_says_to_upgrade(database_url: str) -> None:
    """An empty database, or one at an older revision, is exit 2 naming both revisions and `etl db upgrade`;
    an SQLite file that does not exist is not created by asking."""
    from etl.db import migrate
    from etl.db.engine import sqlite_file

    env = {"ETL_DATABASE_URL": database_url}
    line = _one_line_error(run_etl("extract", "--source", "miclinik", env=env))
    expected = f"expected {migrate.head_revision()}): run `etl db upgrade`"
    assert "is not migrated (revision none, " in line and expected in line
    if (database := sqlite_file(database_url)) is not None:
        assert not database.exists()
    migrate.upgrade(database_url, "0004")
    line = _one_line_error(run_etl("deletions", "list", env=env))
    assert "is not migrated (revision 0004, " in line and expected in line


def test_base_url_userinfo_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """Credentials written into a base_url are refused, saying where they go, and never repeated."""
    from etl.settings import ConfigError, load_settings

    path = tmp_path / "userinfo.yaml"
    for password in ("Bu/Hq7:rT", "Bu-Hq7@rT"):  # read differently by different URL parsers
        path.write_text(GOOD.replace("http://127.0.0.1:18001", f"http://cashier:{password}@127.0.0.1:18001"))
        with pytest.raises(ConfigError, match=r"sources\[1\] \(mikrobill\)\.base_url") as refused:
            load_settings(path)
        assert "Hq7" not in str(refused.value) and "credentials: mapping" in str(refused.value)
    path.write_text(GOOD.replace("http://127.0.0.1:18001", "http://cashier:Bu-Hq7%40rT@127.0.0.1:18001"))
    result = run_etl("--settings", str(path), "--debug", "config", "check")
    line = next(line for line in result.stderr.splitlines() if "configuration error" in line)
    assert result.returncode == 2 and "sources[1] (mikrobill).base_url" in line
    assert "credentials: mapping" in line and "${ENV_VAR}" in line
    assert "Hq7" not in result.stdout + result.stderr and "cashier" not in result.stdout + result.stderr


def test_error_text_is_never_markup(tmp_path: Path) -> None:
    """Brackets in an error (a setting's value, a file name) print literally: no crash, nothing swallowed."""
    path = tmp_path / "[bold]x [id].yaml"
    path.write_text(GOOD.replace("kind: miclinik", 'kind: "[/red] [bold]y[/bold]"'))
    line = _one_line_error(run_etl("--settings", str(path), "config", "check"))
    assert line.startswith(f"configuration error: {path}: sources[0] (miclinik).kind")
    assert "unknown source kind '[/red] [bold]y[/bold]'" in line
