"""Encryption at rest: the one helper that seals what PhoneFleet stores (docs/security.md,
"Encryption at rest").

A sealed blob is ``MAGIC``, the key's id (16 hex digits), a newline, then a Fernet token (AES-128-CBC
with an HMAC-SHA256, from ``cryptography``) of the plain bytes. Any string is a key: Fernet's 32
bytes are derived from it and a *purpose* (so one secret gives unrelated keys for screenshots and
for personal phone exports), and the id from those bytes. The id tells a blob sealed with another
key (``SealedWithOtherKey``) from one that was altered or cut short (``SealedDamaged``).

Users: step screenshots (``orchestrator/db/steps.py`` writes, ``read_stored`` reads; key
``storage.encryption_key``) and personal phone exports (``services/phone_archives.py``; key
``personal_phones.export_key``, magic ``PFPX1``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

__all__ = [
    "SCREENSHOT_MAGIC",
    "Cipher",
    "SealedDamaged",
    "SealedWithOtherKey",
    "read_stored",
    "screenshot_cipher",
    "write_stored",
]

SCREENSHOT_MAGIC = b"PFENC1"
_SCREENSHOT_PURPOSE = b"phonefleet stored file"


class SealedWithOtherKey(Exception):
    """A sealed blob whose key id is not this key's (or there is no key to open it with)."""


class SealedDamaged(Exception):
    """Not a sealed blob of this kind, or one altered or cut short since it was sealed."""


@dataclass(frozen=True)
class Cipher:
    """Seals and opens blobs with one key, for one purpose (see the module docstring)."""

    fernet: Fernet
    key_id: bytes
    magic: bytes

    @classmethod
    def of(cls, secret: str, *, purpose: bytes, magic: bytes) -> Cipher:
        raw = hashlib.sha256(purpose + b"\0" + secret.encode()).digest()
        key_id = hmac.new(raw, b"key id", hashlib.sha256).hexdigest()[:16].encode()
        return cls(Fernet(base64.urlsafe_b64encode(raw)), key_id, magic)

    def seal(self, data: bytes) -> bytes:
        return self.magic + self.key_id + b"\n" + self.fernet.encrypt(data)

    def is_sealed(self, blob: bytes) -> bool:
        return blob.startswith(self.magic)

    def open(self, blob: bytes) -> bytes:
        """The plain bytes; raises ``SealedDamaged`` or ``SealedWithOtherKey``."""
        head, _, token = blob.partition(b"\n")
        if not head.startswith(self.magic) or not token:
            raise SealedDamaged(f"no {self.magic.decode()} header")
        if not hmac.compare_digest(head[len(self.magic) :], self.key_id):
            raise SealedWithOtherKey("sealed with another key")
        try:
            return self.fernet.decrypt(token)
        except InvalidToken:
            raise SealedDamaged("altered or cut short: it does not decrypt") from None


def screenshot_cipher(settings: Any) -> Cipher | None:
    """The cipher of stored files (``storage.encryption_key``), or None when no key is set."""
    key = settings.storage.encryption_key
    if key is None:
        return None
    return Cipher.of(key.get_secret_value(), purpose=_SCREENSHOT_PURPOSE, magic=SCREENSHOT_MAGIC)


def write_stored(path: Path, data: bytes, cipher: Cipher | None) -> None:
    """Write a stored file, sealed when there is a cipher (blocking: call it from a thread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if cipher is None else cipher.seal(data))


def read_stored(path: Path, cipher: Cipher | None) -> bytes:
    """A stored file's plain bytes: opened when sealed, as is when written before a key was set.
    Raises ``OSError``, ``SealedWithOtherKey`` (sealed, and no key or another one), ``SealedDamaged``."""
    blob = path.read_bytes()
    if not blob.startswith(SCREENSHOT_MAGIC):
        return blob
    if cipher is None:
        raise SealedWithOtherKey("the file is encrypted and storage.encryption_key is not set")
    return cipher.open(blob)
