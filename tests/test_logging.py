"""Secrets never reach a log line, whatever carries them."""

from __future__ import annotations

import io
import json

import structlog
from hypothesis import given
from hypothesis import strategies as st

from etl.logging import configure_logging
from etl.redaction import MASK, Redactor
from etl.sources import REGISTRY

SECRET = "s3cr3t-Dolibarr-KEY-9f8e"


def _capture(secrets: list[str], names: set[str] | frozenset[str] = frozenset()) -> io.StringIO:
    out = io.StringIO()
    configure_logging(fmt="json", secrets=secrets, secret_names=names, stream=out)
    return out


def test_secret_in_message_exception_url_and_nested_field_is_masked() -> None:
    """A configured secret is masked in the event, in bound context, in URLs, nested dicts and tracebacks."""
    out = _capture([SECRET])
    log = structlog.get_logger().bind(source="miclinik", stream="products")
    log.info(f"calling with key {SECRET}")
    log.warning("request", url=f"http://h/api/index.php/products?DOLAPIKEY={SECRET}&limit=1", body={"x": [SECRET]})
    log.info("login", credentials={"password": "other-pass", "login": "admin"}, DOLAPIKEY=SECRET)
    try:
        raise RuntimeError(f"401 for key {SECRET}")
    except RuntimeError:
        log.exception("extract failed")
    text = out.getvalue()
    assert SECRET not in text and "other-pass" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 4 and all(line["source"] == "miclinik" for line in lines)
    assert lines[2]["credentials"] == {"password": MASK, "login": "admin"}
    assert MASK in lines[3]["exception"]


def test_inline_credentials_masked_without_configuration() -> None:
    """Credential-shaped key=value pairs are masked even when the value was never configured; the
    names come from the source packages (BILLmanager declares ``authinfo``), not from logging."""
    out = _capture([], REGISTRY["billmanager"].secret_names())
    structlog.get_logger().info("GET /billmgr?func=account&authinfo=admin:pw123&out=json")
    assert "pw123" not in out.getvalue()


@given(prefix=st.text(max_size=30), suffix=st.text(max_size=30))
def test_redactor_never_leaks_configured_secret(prefix: str, suffix: str) -> None:
    """Whatever surrounds a configured secret, the redacted text does not contain it."""
    redactor = Redactor([SECRET])
    assert SECRET not in redactor.text(prefix + SECRET + suffix)
