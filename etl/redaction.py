"""Secrets out of text: mask known secret values and secret-named fields, sanitise URLs.

The one place masking is decided. Logging, error messages, run rows and the CLI all
go through it, so a secret is hidden the same way wherever it would have appeared.
Which values and which field names are secret comes from the settings: every
``SecretStr`` of a source's credentials and options models, and the wire names each
source package declares (``DOLAPIKEY``, ``authinfo``...). This module knows no system.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Field names that hold a secret in any system; per-system names are added by the registry.
GENERIC_SECRET_NAMES = ("password", "passwd", "secret", "token", "api_key", "apikey", "credential")
SHORTEST_SECRET = 4  # masking shorter values would shred ordinary words


def mask_values(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value (of at least four characters) replaced by the mask."""
    for secret in sorted({s for s in secrets if s and len(s) >= SHORTEST_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def sanitize_url(url: str, secret_names: Iterable[str] = GENERIC_SECRET_NAMES) -> str:
    """The URL with its password and any secret-named query value masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if query:
        names = _name_pattern(secret_names)
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if names.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _name_pattern(names: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted({re.escape(n) for n in names if n}, key=len, reverse=True)
    return re.compile(r"(" + "|".join(alternatives) + r")", re.IGNORECASE)


class Redactor:
    """Masks secret-named fields, ``name=value`` pairs of secret names, and every known secret value."""

    def __init__(self, secrets: Iterable[str] = (), names: Iterable[str] = ()) -> None:
        self.update(secrets, names)

    def update(self, secrets: Iterable[str] = (), names: Iterable[str] = ()) -> None:
        """Replace the known secret values and add field names to the generic ones."""
        self.names = tuple(sorted({*GENERIC_SECRET_NAMES, *(n.lower() for n in names if n)}))
        self._key = re.compile(r"(" + "|".join(re.escape(n) for n in self.names) + r")(_\d+)?$", re.IGNORECASE)
        self._inline = re.compile(r"(?i)\b(" + "|".join(re.escape(n) for n in self.names) + r")(_\d+)?=([^&\s\"']+)")
        values = sorted({s for s in secrets if s and len(s) >= SHORTEST_SECRET}, key=len, reverse=True)
        self._values = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def is_secret_name(self, key: str) -> bool:
        """Whether a field called ``key`` holds a secret."""
        return bool(self._key.search(key))

    def text(self, value: str) -> str:
        """``value`` with ``name=secret`` pairs and known secret values masked."""
        value = self._inline.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}={MASK}", value)
        return self._values.sub(MASK, value) if self._values else value

    def value(self, value: Any, key: str = "") -> Any:
        """A log value, recursively masked."""
        if key and value not in (None, "") and self.is_secret_name(key):
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


REDACTOR = Redactor()


def redact(text: str) -> str:
    """Mask secrets in text bound for an error message, the console or the database."""
    return REDACTOR.text(text)
