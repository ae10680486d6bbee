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
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode

MASK = "***"
# Field names that hold a secret in any system; per-system names are added by the registry.
GENERIC_SECRET_NAMES = ("password", "passwd", "secret", "token", "api_key", "apikey", "credential")
SHORTEST_SECRET = 4  # masking shorter values would shred ordinary words
# ``scheme://user:password@`` inside free text (an exception message, a server's words), read the
# way sanitize_url reads each scheme: an http(s) password stops at the authority's end, any other
# (a database URL) runs to the token's last ``@``.
_HTTP_USERINFO = re.compile(r"(?i)\b(https?://[^\s:/@?#\"'<>]*):[^\s/?#\"'<>]*@")
_OTHER_USERINFO = re.compile(r"(?i)\b((?!https?://)[a-z][a-z0-9+.-]*://[^\s:/@\"'<>]*):[^\s\"'<>]*@")


def mask_values(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value (of at least four characters) replaced by the mask."""
    for secret in sorted({s for s in secrets if s and len(s) >= SHORTEST_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def sanitize_url(url: str, secret_names: Iterable[str] = GENERIC_SECRET_NAMES) -> str:
    """The URL with its password and any secret-named query value masked.

    Only what is masked changes: the rest of the URL is returned as written (an empty host,
    as in ``sqlite+aiosqlite:///path``, stays empty)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    rest, hash_, fragment = rest.partition("#")
    rest, qmark, query = rest.partition("?")
    userinfo, at, tail = _userinfo(scheme, rest)
    if at and ":" in userinfo:
        rest = f"{userinfo.split(':', 1)[0]}:{MASK}@{tail}"
    if query:
        names = _name_pattern(secret_names)
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(names.search(k) for k, _ in pairs):
            query = urlencode([(k, MASK if names.search(k) else v) for k, v in pairs], safe="*")
    return f"{scheme}://{rest}{qmark}{query}{hash_}{fragment}"


def _userinfo(scheme: str, rest: str) -> tuple[str, str, str]:
    """``(userinfo, "@", after)`` of ``rest`` (the URL after ``://``, before ``?``), as its consumer reads it.

    aiohttp reads an http(s) URL as RFC 3986 does: the authority ends at the first ``/`` and the
    userinfo at its last ``@``. SQLAlchemy reads a database URL's password up to an ``@`` even
    across ``/`` (``postgresql://u:a/b@host`` has the password ``a/b``), so for any other scheme
    the userinfo runs to the last ``@`` (the widest reading: masking too much is the safe error),
    as long as the user name has no ``/`` (a file path such as ``sqlite:////srv/a@b.db``)."""
    if scheme.lower() in ("http", "https"):
        authority, slash, path = rest.partition("/")
        userinfo, at, host = authority.rpartition("@")
        return userinfo, at, host + slash + path
    userinfo, at, after = rest.rpartition("@")
    if not at or "/" in userinfo.split(":", 1)[0]:
        return "", "", rest
    return userinfo, at, after


def url_passwords(url: str) -> list[str]:
    """Every reading of the password ``url`` carries, raw and percent-decoded, for the redactor.

    A password holding ``@``, ``:`` or ``/`` is read differently by different parsers (SQLAlchemy
    stops at the first ``@``, urllib at the last), so each reading is masked."""
    scheme, sep, rest = url.partition("://")
    rest = rest.partition("#")[0].partition("?")[0]
    if not sep:
        return []
    readings = {_userinfo(scheme, rest)[0], rest.partition("@")[0] if "@" in rest else ""}
    found: set[str] = set()
    for userinfo in readings:
        if ":" in userinfo:
            password = userinfo.split(":", 1)[1]
            found |= {password, unquote(password)}
    return sorted(p for p in found if p)


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
        # Each secret as written and as URLs and forms carry it (a password holding "@" or a space).
        written = [s for s in secrets if s and len(s) >= SHORTEST_SECRET]
        encoded = [form for s in written for form in (quote(s, safe=""), quote_plus(s, safe=""))]
        values = sorted({*written, *encoded}, key=len, reverse=True)
        self._values = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def is_secret_name(self, key: str) -> bool:
        """Whether a field called ``key`` holds a secret."""
        return bool(self._key.search(key))

    def text(self, value: str) -> str:
        """``value`` with ``name=secret`` pairs and known secret values masked."""
        value = self._inline.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}={MASK}", value)
        if "://" in value:
            value = _OTHER_USERINFO.sub(rf"\1:{MASK}@", _HTTP_USERINFO.sub(rf"\1:{MASK}@", value))
        return self._values.sub(MASK, value) if self._values else value

    def strings(self, value: Any) -> Any:
        """``value`` with every string inside it masked as :meth:`text` does; keys are left alone
        (for showing settings, whose keys are not secret-named values: ``codes.auth`` is a list)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.strings(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.strings(v) for v in value]
        return value

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
