"""What Dolibarr does to text it receives through the API, as the fixtures README records it.

- Plain-text fields (``label``, ``name``, ...) go through ``sanitizeVal('alphanohtml')`` (NEW only):
  tags removed (``<Ltd>`` too, ``<script>x</script>`` keeps ``x``), a stray ``<`` removed (``a<b``
  is stored ``ab``), ``‹`` stored as ``&lt;``, double quotes removed, ``../`` removed, runs of
  spaces collapsed; ``'``, ``&`` and ``>`` are kept as literal characters (§1.9).
- Phone fields lose their spaces: ``+45 12 34 56 78`` is stored ``+4512345678`` (§1.9).
- HTML fields (``description``, ``note_public``, ``note_private``) go through ``restricthtml``:
  a bare ``&`` is stored as ``&amp;``, simple tags such as ``<b>`` and ``<i>`` are kept, scripts go.
- A product ``ref`` also goes through ``dol_string_nospecial`` in the model layer (both profiles):
  the apostrophe and the other characters a file name cannot hold become ``_``; ``&`` stays.
"""

from __future__ import annotations

import re

HTML_FIELDS = frozenset({"description", "note_public", "note_private", "note", "desc"})
PHONE_FIELDS = frozenset({"phone", "phone_mobile", "fax", "office_phone", "user_mobile"})

_TAG = re.compile(r"<[^<>]*>")
_SPACES = re.compile(r" {2,}")
_ENCODED_QUOTE = re.compile(r"&(quot|#34|#x22);", re.IGNORECASE)
_BARE_AMP = re.compile(r"&(?!(?:[a-zA-Z][a-zA-Z0-9]*|#[0-9]+|#[xX][0-9a-fA-F]+);)")
_SCRIPT = re.compile(r"<(script|style|iframe|object)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HANDLER = re.compile(r"\s+on[a-z]+\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)", re.IGNORECASE)
_NOSPECIAL = str.maketrans({char: "_" for char in " '/\\:*?\"<>|[],;=°$"})


def plain_text(value: str) -> str:
    """``alphanohtml``: what a label or a name is stored as."""
    text = _TAG.sub("", value).replace("<", "").replace("\u2039", "&lt;")
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
    if field in PHONE_FIELDS:
        return plain_text(value).replace(" ", "")
    return restricted_html(value) if field in HTML_FIELDS else plain_text(value)
