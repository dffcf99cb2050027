"""The vault's encryption: secret values at rest as Fernet tokens, under ``vault.key``.

Shared by the API (``orchestrator/services/vault.py`` encrypts what a tenant stores) and the worker
(``worker/run/secrets.py`` decrypts a value just before the driver types it), so it lives beside
the settings, which both may use. Any string is a key: Fernet's 32 bytes are derived from it.
Values are encrypted with ``vault.key`` and read with it or any of ``vault.old_keys`` (a
``MultiFernet``), so a key is rotated without a moment where values cannot be read
(docs/security.md, "Rotating the vault key").
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from orchestrator.errors import VaultUnavailable

__all__ = ["KEY_FILE", "VaultCipher", "vault_key"]

KEY_FILE = "vault.key"


def vault_key(settings: Any, *, create: bool = True) -> str | None:
    """``vault.key``; in dev, unset, the one kept in ``{data_dir}/vault.key`` (made on first use
    when ``create``, as ``phonefleet up`` does at start); None in prod, unset."""
    configured = settings.vault.key
    if configured is not None:
        return configured.get_secret_value()
    if settings.env != "dev":
        return None
    path = Path(settings.data_dir) / KEY_FILE
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def _fernet(key: str) -> Fernet:
    raw = hashlib.sha256(b"phonefleet vault\0" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(raw))


class VaultCipher:
    """Encrypts with the first key; decrypts with any of them. No key: every call raises
    ``VaultUnavailable`` (prod without ``vault.key``)."""

    def __init__(self, key: str | None, old_keys: list[str] | None = None) -> None:
        keys = ([key] if key else []) + [k for k in old_keys or [] if k]
        self._box = MultiFernet([_fernet(k) for k in keys]) if key else None

    @classmethod
    def from_settings(cls, settings: Any) -> VaultCipher:
        return cls(vault_key(settings), [k.get_secret_value() for k in settings.vault.old_keys])

    def _usable(self) -> MultiFernet:
        if self._box is None:
            raise VaultUnavailable("the secrets vault needs vault.key set (env=prod); the same on the API and workers")
        return self._box

    def encrypt(self, value: str) -> str:
        return self._usable().encrypt(value.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._usable().decrypt(token.encode("ascii")).decode()
        except InvalidToken as exc:
            raise VaultUnavailable(
                "a stored secret cannot be read with vault.key or vault.old_keys (was the key changed "
                "without keeping the old one in vault.old_keys?)"
            ) from exc

    def reencrypt(self, token: str) -> str:
        """``token`` under the current key (``MultiFernet.rotate``): for a key rotation."""
        try:
            return self._usable().rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise VaultUnavailable("a stored secret cannot be read with vault.key or vault.old_keys") from exc
