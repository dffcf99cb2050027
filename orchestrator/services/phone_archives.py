"""Personal phone archives: a personal phone's data as one encrypted file, and a new phone from one.

The file: a blob sealed by ``orchestrator/encryption.py`` (magic ``PFPX1``, the key's id, then a
Fernet token) of a gzipped tar holding ``phonefleet-export.json`` (the phone's name and device
profile, the provider, and on redroid the image that made the data) and ``data/`` (its data). The
key id tells an archive made with another deployment's ``personal_phones.export_key`` (refused as
such) from one that was altered (its token fails the HMAC).

Where the data is: on the virtual phone, a directory the API reads and writes itself
(``personal_phones.data_dir``, shared with the pool manager as under ``phonefleet up``); on redroid,
the phone's Docker volume, which the API reaches on the pool's engine (``pool.redroid.docker_url``)
through ``device_pool/providers/redroid/volumes.py``. A virtual phone's files unpack on the API's
host: only plain files and directories. A redroid volume's unpack inside a throwaway container:
symbolic links are kept too (Android's /data has them), with owners and modes.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from device_pool.errors import PhoneFleetError
from orchestrator.db import PersonalPhone, PersonalPhoneState
from orchestrator.encryption import Cipher, SealedDamaged, SealedWithOtherKey
from orchestrator.errors import (
    DockerEngineUnavailable,
    PayloadTooLarge,
    PersonalPhoneArchiveDamaged,
    PersonalPhoneArchiveForeign,
    PersonalPhoneArchiveUnsafe,
    PersonalPhoneInUse,
    PersonalPhonesUnsupported,
)
from orchestrator.services.audit import record_audit
from orchestrator.services.auth import Principal
from orchestrator.services.personal_phones import PersonalPhoneService, PersonalPhoneSpec

if TYPE_CHECKING:
    from device_pool.providers.redroid.volumes import PersonalVolumes

__all__ = ["PhoneArchives", "archive_cipher", "export_key", "personal_volumes"]

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


def personal_volumes(settings: Any) -> PersonalVolumes | None:
    """The redroid pool's personal volumes on its engine (``pool.redroid``), when the pool runs
    redroid: the API reads and makes them itself, so it must reach that engine. None otherwise."""
    if settings.pool.provider != "redroid":
        return None
    from device_pool.providers.redroid.config import RedroidConfig
    from device_pool.providers.redroid.volumes import PersonalVolumes

    return PersonalVolumes(RedroidConfig(**settings.pool.redroid.model_dump()))


def archive_cipher(secret: str) -> Cipher:
    """The cipher of exports made with ``personal_phones.export_key`` = ``secret``."""
    return Cipher.of(secret, purpose=b"phonefleet personal phone export", magic=MAGIC)


class PhoneArchives:
    """Export and import of personal phones' data (docs/personal-phones.md, "Backing up")."""

    def __init__(
        self,
        phones: PersonalPhoneService,
        *,
        data_dir: Path,
        key: str | None,
        max_bytes: int,
        volumes: PersonalVolumes | None = None,
    ) -> None:
        self.phones = phones
        self.data_dir = Path(data_dir)
        self.key = None if key is None else archive_cipher(key)
        self.max_bytes = max_bytes
        self.volumes = volumes  # the redroid pool's personal volumes (pool.provider=redroid)

    async def export(self, principal: Principal, phone_id: uuid.UUID) -> tuple[PersonalPhone, bytes]:
        """The phone and its encrypted archive. Raises ``PersonalPhoneNotFound``,
        ``PersonalPhonesUnsupported`` (409: not a virtual phone's, or no key), ``PersonalPhoneInUse``
        (409: held, waking or sleeping, or used while it was packed), ``PayloadTooLarge``."""
        key = self._usable()
        row = await self.phones.owned(principal, phone_id)
        _exportable(row)
        packed = await self._pack_volume(row) if self.volumes is not None else await asyncio.to_thread(self._pack, row)
        again = await self.phones.owned(principal, phone_id)
        if again.last_used_at != row.last_used_at:
            _exportable(again)  # it is busy now; else it was used meanwhile:
            raise PersonalPhoneInUse(
                f"personal phone {row.id} was used while it was exported; export it again",
                context={"personal_phone_id": str(row.id)},
            )
        _exportable(again)
        archive = key.seal(packed)
        async with self.phones.db.transaction(write=True) as db_session:  # its data leaves the deployment
            await record_audit(db_session, principal, "personal_phone.export", target=f"personal_phone:{row.id}",
                               detail={"name": row.name, "bytes": len(archive)})  # fmt: skip
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
        if self.volumes is not None:
            meta = await self._unpack_volume(packed, phone_id)
        else:
            meta = await asyncio.to_thread(self._unpack, packed, target)
        spec = PersonalPhoneSpec(
            name=name or meta.get("name") or "Imported", device_profile=meta.get("device_profile")
        )
        try:
            # On redroid the volume is on this engine's pool: the new phone's home pool.
            home = self.volumes.config.pool_id if self.volumes is not None else None
            row = await self.phones.create(principal, spec, phone_id=phone_id, home_pool=home)
        except BaseException:
            if self.volumes is not None:
                try:
                    await self.volumes.remove(phone_id)
                except PhoneFleetError as exc:  # the refusal is the answer; the leftover is logged
                    logger.warning("an imported volume was left behind", extra={
                        "personal_phone_id": str(phone_id), "error": str(exc)})  # fmt: skip
            else:
                await asyncio.to_thread(shutil.rmtree, target, True)
            raise
        logger.info("personal phone imported", extra={"personal_phone_id": str(row.id)})
        return row

    def _usable(self) -> Cipher:
        if not (self.phones.provider == "sim" or (self.phones.provider == "redroid" and self.volumes is not None)):
            raise PersonalPhonesUnsupported(
                f"export and import are for personal phones' data on the virtual phone or redroid; the "
                f"pool's provider is {self.phones.provider!r}",
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
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            _add_meta(tar, row, provider="sim")
            if source.is_dir():  # never woken: an archive of a phone in factory state
                tar.add(source, arcname=_DATA, filter=_plain)
        return buffer.getvalue()

    async def _pack_volume(self, row: PersonalPhone) -> bytes:
        """The redroid phone's volume (as Docker reads it: members under ``data/``, owners, modes and
        links kept), with the metadata, as one gzipped tar."""
        from device_pool.providers.redroid.engine import VolumeTooLarge

        assert self.volumes is not None
        if row.home_pool is not None and row.home_pool != self.volumes.config.pool_id:
            # Its volume is on another pool's engine: this one would read none, an empty phone.
            # The pools' ids are fleet detail (the caller is the phone's owner): logged, not answered.
            logger.warning("personal phone export: its data is on another pool's Docker engine", extra={
                "personal_phone_id": str(row.id), "home_pool": row.home_pool,
                "pool_id": self.volumes.config.pool_id})  # fmt: skip
            raise DockerEngineUnavailable(
                f"personal phone {row.id}'s data is on a host whose Docker engine this API does not reach; "
                "the operator can export it there (docs/personal-phones.md, \"Home pool\")"
            )
        try:
            with _engine(self.volumes):
                image = await self.volumes.image_of(row.id)
                raw = await self.volumes.read(row.id, max_bytes=self.max_bytes)
        except VolumeTooLarge:
            raise PayloadTooLarge(
                f"personal phone {row.id} holds more than personal_phones.max_archive_bytes"
            ) from None

        def pack() -> bytes:
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                _add_meta(tar, row, provider="redroid", image=image)
                if raw is not None:  # never woken: an archive of a phone in factory state
                    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as volume:
                        for member in volume.getmembers():
                            under_data = PurePosixPath(member.name).parts[:1] == (_DATA,)
                            if member.islnk() and under_data:  # a copy of its file: imports take no hard links
                                data = volume.extractfile(member)
                                copy = member.replace(linkname="", deep=False)
                                copy.type, copy.size = tarfile.REGTYPE, volume.getmember(member.linkname).size
                                tar.addfile(copy, data)
                            elif _kept_on_redroid(member):
                                tar.addfile(member, volume.extractfile(member) if member.isfile() else None)
            return buffer.getvalue()

        return await asyncio.to_thread(pack)

    async def _unpack_volume(self, packed: bytes, phone_id: uuid.UUID) -> dict[str, Any]:
        """Check the archive, then fill the new phone's volume from its ``data/`` members."""
        assert self.volumes is not None

        def check() -> tuple[dict[str, Any], bytes]:
            with _opened(packed, self.max_bytes, links=True) as (tar, members, meta):
                out = io.BytesIO()
                with tarfile.open(fileobj=out, mode="w:") as data:
                    for member in members:
                        if member.name != _META:
                            data.addfile(member, tar.extractfile(member) if member.isfile() else None)
                return meta, out.getvalue()

        meta, data = await asyncio.to_thread(check)
        _same_provider(meta, "redroid")
        with _engine(self.volumes):
            await self.volumes.write(phone_id, data, image=meta.get("image"))
        return meta

    def _unpack(self, packed: bytes, target: Path) -> dict[str, Any]:
        with _opened(packed, self.max_bytes) as (tar, members, meta):
            _same_provider(meta, "sim")
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
        return meta


@contextmanager
def _opened(
    packed: bytes, max_bytes: int, *, links: bool = False
) -> Iterator[tuple[tarfile.TarFile, list[tarfile.TarInfo], dict[str, Any]]]:
    """The archive opened and checked (``_check``), with its metadata, for both imports (a virtual
    phone's directory, a redroid volume): whatever fails to unpack in the block, here or in the
    caller's use of it, is ``PersonalPhoneArchiveDamaged``."""
    try:
        with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
            members = tar.getmembers()
            _check(members, max_bytes, links=links)
            yield tar, members, _meta_of(tar, members)
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise PersonalPhoneArchiveDamaged(f"this archive does not unpack: {exc}") from None


@contextmanager
def _engine(volumes: PersonalVolumes) -> Iterator[None]:
    """The engine's failures (down, refused, a helper container that failed) as a 503 that says
    where the API looked (a volume too large passes as it is)."""
    from device_pool.providers.errors import ProviderError
    from device_pool.providers.redroid.engine import VolumeTooLarge

    try:
        yield
    except VolumeTooLarge:
        raise
    except ProviderError as exc:
        # Where the engine is, and what it said, is the operator's to read (the log), not the caller's.
        logger.warning("personal phone export or import: the redroid pool's Docker engine failed", extra={
            "docker_url": volumes.config.docker_url, "error": exc.message})  # fmt: skip
        raise DockerEngineUnavailable(
            "the redroid pool's Docker engine did not serve this export or import (the operator's log "
            "says why: the API must reach it, pool.redroid.docker_url)"
        ) from exc


def _add_meta(tar: tarfile.TarFile, row: PersonalPhone, **more: Any) -> None:
    meta = json.dumps({"format": 1, "name": row.name, "device_profile": row.device_profile, **more}).encode()
    info = tarfile.TarInfo(_META)
    info.size = len(meta)
    tar.addfile(info, io.BytesIO(meta))


def _meta_of(tar: tarfile.TarFile, members: list[tarfile.TarInfo]) -> dict[str, Any]:
    member = next((m for m in members if m.name == _META), None)
    if member is None:
        raise PersonalPhoneArchiveDamaged(f"this archive holds no {_META}")
    meta = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
    if not isinstance(meta, dict):
        raise PersonalPhoneArchiveDamaged(f"{_META} is not an object")
    return meta


def _same_provider(meta: dict[str, Any], provider: str) -> None:
    """A virtual phone's data directory and a redroid /data are laid out differently: an archive
    is imported by a pool of the provider that exported it (archives before this field: sim)."""
    made_by = meta.get("provider", "sim")
    if made_by != provider:
        raise PersonalPhonesUnsupported(
            f"this archive holds a {made_by} phone's data; this deployment's pool runs {provider} "
            f"(pool.provider): import it where the pool runs {made_by}",
            context={"archive_provider": made_by, "provider": provider},
        )


def _kept_on_redroid(info: tarfile.TarInfo) -> bool:
    """What a redroid volume's export keeps: files, directories and symbolic links (no devices or
    pipes; a hard link becomes a copy of its file), under ``data/``."""
    return (info.isfile() or info.isdir() or info.issym()) and PurePosixPath(info.name).parts[:1] == (_DATA,)


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


def _check(members: list[tarfile.TarInfo], max_bytes: int, *, links: bool = False) -> None:
    """Every member a plain file or directory under ``data/`` (or the metadata), small enough in all.
    ``links`` (a redroid volume, unpacked in a container): symbolic links too, but no member under one."""
    total = 0
    symlinks: set[PurePosixPath] = set()
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts:
            raise PersonalPhoneArchiveUnsafe(
                f"archive member {member.name!r} would land outside the phone's data"
            )
        if any(parent in symlinks for parent in path.parents):
            raise PersonalPhoneArchiveUnsafe(f"archive member {member.name!r} lies under a symbolic link")
        if links and member.issym():
            symlinks.add(path)
        elif not (member.isfile() or member.isdir()):
            raise PersonalPhoneArchiveUnsafe(
                f"archive member {member.name!r} is a link or a device, not a file"
            )
        if member.name != _META and path.parts[:1] != (_DATA,):
            raise PersonalPhoneArchiveUnsafe(f"archive member {member.name!r} is not under {_DATA}/")
        total += member.size
        if total > max_bytes:
            raise PayloadTooLarge(f"the archive unpacks to more than {max_bytes} bytes")
