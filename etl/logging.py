"""structlog set-up: console on a terminal, JSON lines otherwise, secrets masked.

Every line carries the context bound with :func:`structlog.contextvars.bind_contextvars`
(``run_id``, ``job``, ``source``, ``stream``). The :class:`Redactor` runs after
exceptions are formatted, so a secret inside an exception message or a URL is
masked as well as one under a secret-looking key.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

MASK = "***"
SECRET_KEYS = re.compile(
    r"(pass(word|wd)?|apikey|api_key|authinfo|token|accesstoken|dolapikey|crypto_key(_\d)?|secret|auth|sid)$",
    re.IGNORECASE,
)
# Values that look like credentials wherever they appear: key=value pairs in URLs and bodies.
_INLINE = re.compile(
    r"(?i)\b(password|passwd|apikey|api_key|authinfo|token|accesstoken|dolapikey|auth|crypto_key_\d)=([^&\s\"']+)"
)


class Redactor:
    """Masks secret-named fields and every configured secret value, recursively."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        values = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def text(self, value: str) -> str:
        value = _INLINE.sub(lambda m: f"{m.group(1)}={MASK}", value)
        return self._pattern.sub(MASK, value) if self._pattern else value

    def value(self, value: Any, key: str = "") -> Any:
        if key and SECRET_KEYS.search(key) and value not in (None, ""):
            return MASK
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, BaseException):
            return self.text(repr(value))
        return value

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        return {k: self.value(v, k) for k, v in event_dict.items()}


REDACTOR = Redactor()


def configure_logging(
    *,
    fmt: str = "auto",
    level: str = "info",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog once per process; ``fmt`` is auto, json or console."""
    stream = stream or sys.stderr
    REDACTOR.update(secrets)
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            REDACTOR,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )


def redact(text: str) -> str:
    """Mask secrets in text bound for an error message or the database."""
    return REDACTOR.text(text)
