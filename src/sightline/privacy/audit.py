"""Keyed hashes of data subjects, and the audit trail of privacy requests.

An erased id must not survive its erasure, not even in the record that says it was
erased. The audit log and the tombstones therefore keep only
``HMAC-SHA256(privacy key, "<kind>\\0<id>")`` (hex): whoever holds the key and an id
can check whether that id was erased, nobody can read ids back out of the log.

The key is ``privacy_secret`` when set, else 32 random bytes made once and kept in the
warm store's ``privacy_keys`` table, shared by every process of the installation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sightline.config import Settings
    from sightline.stores.base import Store

KEY_BYTES = 32
KEY_NAME = "subject-hmac"

VISITOR = "visitor"
USER = "user"


def load_privacy_key(settings: Settings, store: Store) -> bytes:
    """The installation's privacy key: ``privacy_secret``, else a random key made once and
    kept in the store's ``privacy_keys`` table (so every process of a scaled deployment
    hashes alike)."""
    if settings.privacy_secret:
        return settings.privacy_secret.encode()
    store.query(
        "INSERT INTO privacy_keys VALUES ($name, $key, now()) ON CONFLICT DO NOTHING",
        {"name": KEY_NAME, "key": secrets.token_hex(KEY_BYTES)},
    )
    rows = store.query("SELECT key_hex FROM privacy_keys WHERE name = $name", {"name": KEY_NAME})
    return bytes.fromhex(rows[0][0])


def subject_hash(key: bytes, kind: str, subject_id: str) -> str:
    """The keyed hash kept instead of an erased id."""
    return hmac.new(key, f"{kind}\0{subject_id}".encode(), hashlib.sha256).hexdigest()


def record_request(
    store: Store,
    key: bytes,
    *,
    actor: str,
    action: str,
    visitor_ids: list[str],
    user_ids: list[str],
    details: Mapping[str, Any],
) -> None:
    """One audit entry for an export or an erasure: who (``actor``), when (now), the
    scope and the counts per tier in ``details``; the subject only as keyed hashes."""
    hashes = [subject_hash(key, VISITOR, v) for v in visitor_ids] + [
        subject_hash(key, USER, u) for u in user_ids
    ]
    store.record_audit(
        actor,
        action,
        hashes[0] if hashes else "",
        {**details, "subjectHashes": hashes},
    )
