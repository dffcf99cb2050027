"""Personal phone archives: a virtual phone's data as one encrypted file, and a new phone from one.

The file: a blob sealed by ``orchestrator/encryption.py`` (magic ``PFPX1``, the key's id, then a
Fernet token) of a gzipped tar holding ``phonefleet-export.json`` (the phone's
name and device profile) and ``data/`` (its data directory). The key id tells an archive made with
another deployment's ``personal_phones.export_key`` (refused as such) from one that was altered
(its token fails the HMAC).

The API reads and writes ``personal_phones.data_dir`` itself: it shares that directory with the
pool manager (as under ``phonefleet up``). A redroid phone's data is a Docker volume the API does
not reach: its export is refused (409) for now.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import shutil
import tarfile
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.db import PersonalPhone, PersonalPhoneState
from orchestrator.encryption import Cipher, SealedDamaged, SealedWithOtherKey
from orchestrator.errors import (
    PayloadTooLarge,
    PersonalPhoneArchiveDamaged,
    PersonalPhoneArchiveForeign,
    PersonalPhoneArchiveUnsafe,
    PersonalPhoneInUse,
    PersonalPhonesUnsupported,
)
from orchestrator.services.auth import Principal
from orchestrator.services.personal_phones import PersonalPhoneService, PersonalPhoneSpec

__all__ = ["PhoneArchives", "archive_cipher", "export_key"]

logger = logging.getLogger(__name__)

MAGIC = b"PFPX1"
KEY_FILE = "export.key"
_META = "phonefleet-export.json"
_DATA = "data"
# Its data does not change under the export: nobody holds it (a ready phone's device is idle).
_EXPORTABLE = (PersonalPhoneState.ASLEEP, PersonalPhoneState.READY)


def export_key(settings: Any) -> str | None:
    """``personal_phones.export_key``; in dev, unset, the one kept in ``{data_dir}/export.key`` (made
    on first use, as ``phonefleet up`` keeps its admin key); None in prod, unset."""
    configured = settings.personal_phones.export_key
    if configured is not None:
        return configured.get_secret_value()
    if settings.env != "dev":
        return None
    path = Path(settings.data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def archive_cipher(secret: str) -> Cipher:
    """The cipher of exports made with ``personal_phones.export_key`` = ``secret``."""
    return Cipher.of(secret, purpose=b"phonefleet personal phone export", magic=MAGIC)


class PhoneArchives:
    """Export and import of the virtual phones' personal data (docs/personal-phones.md, "Backing up")."""

    def __init__(
        self,
        phones: PersonalPhoneService,
        *,
        data_dir: Path,
        key: str | None,
        max_bytes: int,
    ) -> None:
        self.phones = phones
        self.data_dir = Path(data_dir)
        self.key = None if key is None else archive_cipher(key)
        self.max_bytes = max_bytes

    async def export(self, principal: Principal, phone_id: uuid.UUID) -> tuple[PersonalPhone, bytes]:
        """The phone and its encrypted archive. Raises ``PersonalPhoneNotFound``,
        ``PersonalPhonesUnsupported`` (409: not a virtual phone's, or no key), ``PersonalPhoneInUse``
        (409: held, waking or sleeping, or used while it was packed), ``PayloadTooLarge``."""
        key = self._usable()
        row = await self.phones.owned(principal, phone_id)
        _exportable(row)
        packed = await asyncio.to_thread(self._pack, row)
        again = await self.phones.owned(principal, phone_id)
        if again.last_used_at != row.last_used_at:
            _exportable(again)  # it is busy now; else it was used meanwhile:
            raise PersonalPhoneInUse(
                f"personal phone {row.id} was used while it was exported; export it again",
                context={"personal_phone_id": str(row.id)},
            )
        _exportable(again)
        archive = key.seal(packed)
        logger.info(
            "personal phone exported", extra={"personal_phone_id": str(row.id), "bytes": len(archive)}
        )
        return row, archive

    async def import_(self, principal: Principal, archive: bytes, name: str | None) -> PersonalPhone:
        """A new, asleep personal phone of the caller on the archive's data (named ``name``, else as
        the exported one). Raises ``PersonalPhoneArchiveForeign``, ``PersonalPhoneArchiveDamaged``,
        ``PersonalPhoneArchiveUnsafe`` (422), and what making a phone raises (quota: 409)."""
        key = self._usable()
        if len(archive) > self.max_bytes:
            raise PayloadTooLarge(
                f"the archive exceeds {self.max_bytes} bytes (personal_phones.max_archive_bytes)"
            )
        if not key.is_sealed(archive):
            raise PersonalPhoneArchiveDamaged("this is not a personal phone export (no PFPX1 header)")
        try:
            packed = key.open(archive)
        except SealedWithOtherKey:
            raise PersonalPhoneArchiveForeign(
                "this archive was made by another deployment: its key does not match "
                "(personal_phones.export_key)"
            ) from None
        except SealedDamaged:
            raise PersonalPhoneArchiveDamaged(
                "this archive was altered or cut short since it was exported: it does not decrypt"
            ) from None
        phone_id = uuid.uuid4()
        target = self.data_dir / str(phone_id)
        meta = await asyncio.to_thread(self._unpack, packed, target)
        spec = PersonalPhoneSpec(
            name=name or meta.get("name") or "Imported", device_profile=meta.get("device_profile")
        )
        try:
            row = await self.phones.create(principal, spec, phone_id=phone_id)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, target, True)
            raise
        logger.info("personal phone imported", extra={"personal_phone_id": str(row.id)})
        return row

    def _usable(self) -> Cipher:
        if self.phones.provider != "sim":
            raise PersonalPhonesUnsupported(
                f"export and import are for the virtual phone's personal data; the pool's provider is "
                f"{self.phones.provider!r} (redroid volumes: back them up as docs/personal-phones.md says)",
                context={"provider": self.phones.provider},
            )
        if self.key is None:
            raise PersonalPhonesUnsupported(
                "export and import need personal_phones.export_key set (env=prod); the same on every "
                "deployment that should read these archives"
            )
        return self.key

    def _pack(self, row: PersonalPhone) -> bytes:
        source = self.data_dir / str(row.id)
        size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file()) if source.is_dir() else 0
        if size > self.max_bytes:
            raise PayloadTooLarge(
                f"personal phone {row.id} holds {size} bytes, more than personal_phones.max_archive_bytes"
            )
        meta = json.dumps({"format": 1, "name": row.name, "device_profile": row.device_profile}).encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            info = tarfile.TarInfo(_META)
            info.size = len(meta)
            tar.addfile(info, io.BytesIO(meta))
            if source.is_dir():  # never woken: an archive of a phone in factory state
                tar.add(source, arcname=_DATA, filter=_plain)
        return buffer.getvalue()

    def _unpack(self, packed: bytes, target: Path) -> dict[str, Any]:
        try:
            with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
                members = tar.getmembers()
                _check(members, self.max_bytes)
                meta_member = next((m for m in members if m.name == _META), None)
                if meta_member is None:
                    raise PersonalPhoneArchiveDamaged(f"this archive holds no {_META}")
                meta = json.loads(tar.extractfile(meta_member).read())  # type: ignore[union-attr]
                staging = self.data_dir / f".import-{target.name}"
                staging.mkdir(parents=True)
                try:
                    tar.extractall(staging, members=[m for m in members if m.name != _META], filter="data")
                    unpacked = staging / _DATA
                    if not unpacked.is_dir():
                        unpacked.mkdir()
                    unpacked.rename(target)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            raise PersonalPhoneArchiveDamaged(f"this archive does not unpack: {exc}") from None
        if not isinstance(meta, dict):
            raise PersonalPhoneArchiveDamaged(f"{_META} is not an object")
        return meta


def _exportable(row: PersonalPhone) -> None:
    if row.state not in _EXPORTABLE:
        raise PersonalPhoneInUse(
            f"personal phone {row.id} is {row.state.value}: export it when it is asleep or ready "
            "(no task or session on it)",
            context={"personal_phone_id": str(row.id), "state": row.state.value},
        )


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Regular files and directories only, owned by nobody in particular (import refuses the rest)."""
    if not (info.isfile() or info.isdir()):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _check(members: list[tarfile.TarInfo], max_bytes: int) -> None:
    """Every member a plain file or directory under ``data/`` (or the metadata), small enough in all."""
    total = 0
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts:
            raise PersonalPhoneArchiveUnsafe(
                f"archive member {member.name!r} would land outside the phone's data"
            )
        if not (member.isfile() or member.isdir()):
            raise PersonalPhoneArchiveUnsafe(
                f"archive member {member.name!r} is a link or a device, not a file"
            )
        if member.name != _META and path.parts[:1] != (_DATA,):
            raise PersonalPhoneArchiveUnsafe(f"archive member {member.name!r} is not under {_DATA}/")
        total += member.size
        if total > max_bytes:
            raise PayloadTooLarge(f"the archive unpacks to more than {max_bytes} bytes")
