"""structlog set-up: console on a terminal, JSON lines otherwise, secrets masked.

Every line carries the context bound with :func:`structlog.contextvars.bind_contextvars`
(``run_id``, ``job``, ``source``, ``stream``). The redactor (:mod:`etl.redaction`) runs after
exceptions are formatted, so a secret inside an exception message or a URL is
masked as well as one under a secret-looking key.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from etl.redaction import REDACTOR, redact

__all__ = ["configure_logging", "redact"]


def configure_logging(
    *,
    fmt: str = "auto",
    level: str = "info",
    secrets: Iterable[str] = (),
    secret_names: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog once per process; ``fmt`` is auto, json or console.

    ``secrets`` are the configured secret values and ``secret_names`` the field names that
    hold secrets (both from :meth:`etl.settings.Settings`), masked in every line."""
    stream = stream or sys.stderr
    REDACTOR.update(secrets, secret_names)
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )


def _redact_event(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {key: REDACTOR.value(value, key) for key, value in event_dict.items()}
