"""What Dolibarr does to text it receives through the API, as the fixtures README records it.

- Plain-text fields (``label``, ``name``, ...) go through ``sanitizeVal('alphanohtml')`` (NEW only):
  tags removed (``<Ltd>`` too), double quotes removed, ``../`` removed, runs of spaces collapsed;
  ``'``, ``&`` and ``>`` are kept as literal characters.
- HTML fields (``description``, ``note_public``, ``note_private``) go through ``restricthtml``:
  a bare ``&`` is stored as ``&amp;``, simple tags such as ``<b>`` and ``<i>`` are kept, scripts go.
- A product ``ref`` also goes through ``dol_string_nospecial`` in the model layer (both profiles):
  the apostrophe and the other characters a file name cannot hold become ``_``; ``&`` stays.
"""

from __future__ import annotations

import re

HTML_FIELDS = frozenset({"description", "note_public", "note_private", "note", "desc"})

_TAG = re.compile(r"<[^<>]*>")
_SPACES = re.compile(r" {2,}")
_ENCODED_QUOTE = re.compile(r"&(quot|#34|#x22);", re.IGNORECASE)
_BARE_AMP = re.compile(r"&(?!(?:[a-zA-Z][a-zA-Z0-9]*|#[0-9]+|#[xX][0-9a-fA-F]+);)")
_SCRIPT = re.compile(r"<(script|style|iframe|object)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HANDLER = re.compile(r"\s+on[a-z]+\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)", re.IGNORECASE)
_NOSPECIAL = str.maketrans({char: "_" for char in " '/\\:*?\"<>|[],;=°$"})


def plain_text(value: str) -> str:
    """``alphanohtml``: what a label or a name is stored as."""
    text = _TAG.sub("", value)
    text = _ENCODED_QUOTE.sub("", text).replace('"', "").replace("../", "")
    return _SPACES.sub(" ", text).strip()


def restricted_html(value: str) -> str:
    """``restricthtml``: what a description or a note is stored as."""
    text = _SCRIPT.sub("", value)
    text = _HANDLER.sub("", text)
    return _BARE_AMP.sub("&amp;", text)


def product_ref(value: str) -> str:
    """``dol_string_nospecial``: the apostrophe in ``FIX-O'Brien&Co`` becomes ``_``."""
    return value.strip().translate(_NOSPECIAL)


def incoming_text(field: str, value: str, *, new_profile: bool) -> str:
    """A string field of a POST/PUT body as the API stores it (OLD stores text unchanged)."""
    if not new_profile:
        return value
    return restricted_html(value) if field in HTML_FIELDS else plain_text(value)
