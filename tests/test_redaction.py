"""The one redaction module: secret values, secret-named fields and URLs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from etl.redaction import MASK, Redactor, mask_values, sanitize_url


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
