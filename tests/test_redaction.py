"""The one redaction module: secret values, secret-named fields and URLs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etl.redaction import MASK, Redactor, mask_values, sanitize_url, url_passwords


def test_urls_lose_their_password_and_secret_query_values() -> None:
    """A URL keeps its user, host, path and harmless parameters; the password and secret values are masked."""
    url = "postgresql+asyncpg://etl:p4ss-w0rd@db.example:5432/stage?api_key=k-123&limit=5"
    shown = sanitize_url(url)
    assert "p4ss-w0rd" not in shown and "k-123" not in shown
    assert shown.startswith(f"postgresql+asyncpg://etl:{MASK}@db.example:5432/stage?") and "limit=5" in shown
    assert sanitize_url("http://host/path") == "http://host/path"


def test_registered_names_are_masked_as_fields_and_inline() -> None:
    """Names a source package declares (a header, a form field) are masked like the generic ones."""
    redactor = Redactor(names=["DOLAPIKEY", "authinfo"])
    assert redactor.value({"DOLAPIKEY": "abc", "auth_mode": "session"}) == {"DOLAPIKEY": MASK, "auth_mode": "session"}
    assert "pw99" not in redactor.text("func=x&authinfo=admin:pw99&out=json")
    assert Redactor().text("authinfo=admin:pw99") == "authinfo=admin:pw99", "not a generic name"


@given(secret=st.text(min_size=4, max_size=20), around=st.text(max_size=20))
def test_mask_values_never_leaves_a_secret(secret: str, around: str) -> None:
    """Whatever surrounds a secret of four or more characters, it does not survive masking."""
    assert secret not in mask_values(around + secret + around, [secret])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite+aiosqlite:///./var/staging.db", "sqlite+aiosqlite:///./var/staging.db"),
        ("sqlite+aiosqlite:////srv/a@b/x.db", "sqlite+aiosqlite:////srv/a@b/x.db"),
        ("postgresql+asyncpg://etl:a:b/c@db:5432/stage", f"postgresql+asyncpg://etl:{MASK}@db:5432/stage"),
        ("postgresql+asyncpg://etl:Pw-9!x@Zz@db/stage", f"postgresql+asyncpg://etl:{MASK}@db/stage"),
        ("postgresql+asyncpg://etl:Pw-9%21x%40Zz@db/stage", f"postgresql+asyncpg://etl:{MASK}@db/stage"),
        ("http://u:p@w@host:80/x?e=a@b#top", f"http://u:{MASK}@host:80/x?e=a@b#top"),
        ("http://host:8080/path@x", "http://host:8080/path@x"),
    ],
)
def test_sanitize_url_reads_each_url_as_its_consumer_does(url: str, shown: str) -> None:
    """A database URL's password may hold ':', '/' or '@' (SQLAlchemy reads it so), an http one ends at the
    authority; whatever is not masked is returned exactly as written."""
    assert sanitize_url(url) == shown


def test_url_passwords_give_every_reading_raw_and_decoded() -> None:
    """The redactor learns a URL password as each parser reads it, percent-encoded and decoded."""
    assert set(url_passwords("postgresql+asyncpg://etl:Pw-9%21x%40Zz@db/stage")) == {"Pw-9%21x%40Zz", "Pw-9!x@Zz"}
    assert {"Pw-9!x", "Pw-9!x@Zz"} <= set(url_passwords("postgresql+asyncpg://etl:Pw-9!x@Zz@db/stage"))
    assert url_passwords("postgresql+asyncpg://etl:a:b/c@db/stage") == ["a:b/c"]
    assert url_passwords("sqlite+aiosqlite:////srv/a@b/x.db") == url_passwords("http://host/p@x") == []


def test_settings_secret_values_hold_database_url_passwords() -> None:
    """Settings hand the redactor both forms of a database URL's password, so text holding either is masked."""
    from etl.settings import Settings

    settings = Settings(database_url="postgresql+asyncpg://etl:Pw-9%21x%40Zz@db/stage", sources=[])
    assert {"Pw-9%21x%40Zz", "Pw-9!x@Zz"} <= set(settings.secret_values())
    redactor = Redactor(settings.secret_values())
    assert "9!x" not in redactor.text("asyncpg: password 'Pw-9!x@Zz' rejected")


def test_userinfo_in_free_text_is_masked() -> None:
    """A URL with credentials inside any message (an exception, a server's words) loses its password."""
    text = "redirected to https://bob:s3cr:et@evil.example/x?y=1&e=a@b from postgresql://etl:a:b/c@db/stage"
    shown = Redactor().text(text)
    assert shown == f"redirected to https://bob:{MASK}@evil.example/x?y=1&e=a@b from postgresql://etl:{MASK}@db/stage"
    assert Redactor().text("see http://host:8080/p?e=a@b") == "see http://host:8080/p?e=a@b", "no userinfo there"


def test_secret_values_are_masked_percent_encoded_too() -> None:
    """A password holding "@" or a space is masked as written and as URLs and forms carry it."""
    redactor = Redactor(["p@ss word!"])
    assert redactor.text("a p%40ss%20word%21 b p%40ss+word%21 c p@ss word!") == "a *** b *** c ***"
