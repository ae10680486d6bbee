"""The ``resumekey`` of a chunked ``…ByLastChange`` sequence: opaque to clients, stateless here.

A key carries everything needed to continue: the command's entity, the sequence's
``since`` (its changedate/changetime) and ``snapshot`` (when its first chunk was
received), the last ``(change moment, id)`` served and the filter flags. It is
signed with a tenant secret, so a garbled or foreign key is refused rather than
silently continuing somewhere else, and it survives a simulator restart with the
same seed, as a key stored in a client's checkpoint would need to.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass


class BadResumeKey(ValueError):
    """A resumekey this tenant did not issue, or one used with another command or changedate."""


@dataclass(frozen=True)
class ResumePoint:
    """Where a chunked sequence stopped."""

    entity: str
    since: int
    snapshot: int
    after: tuple[int, int]
    flags: str = ""


def _signature(secret: bytes, payload: str) -> str:
    return hashlib.blake2b(payload.encode(), key=secret, digest_size=8).hexdigest()


def encode(point: ResumePoint, secret: bytes) -> str:
    """The key a client sends back to continue after ``point``."""
    payload = f"{point.entity}|{point.since}|{point.snapshot}|{point.after[0]}|{point.after[1]}|{point.flags}"
    body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{body}.{_signature(secret, payload)}"


def decode(key: object, secret: bytes) -> ResumePoint:
    """The point a key stands for; raises :class:`BadResumeKey` if it was not issued here."""
    if not isinstance(key, str) or key.count(".") != 1:
        raise BadResumeKey("invalid resumekey")
    body, signature = key.split(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadResumeKey("invalid resumekey") from None
    if not hmac.compare_digest(signature, _signature(secret, payload)):
        raise BadResumeKey("invalid resumekey")
    entity, since, snapshot, moment, record_id, flags = payload.split("|")
    return ResumePoint(entity, int(since), int(snapshot), (int(moment), int(record_id)), flags)
