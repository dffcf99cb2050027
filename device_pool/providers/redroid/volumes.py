"""Redroid personal phones' volumes as tar archives: what the API's export and import read and write.

A personal phone's data on redroid is one Docker volume (``personal_volume_name``), mounted as the
phone's ``/data`` (or ``/data-diff`` over the golden ``/data-base``). Export reads it, import makes a
new one, each through a short-lived container of the pool's image that mounts the volume and is
never started: Docker copies out of and into that container's filesystem (``docker cp``), so
Android's owners, modes and links are kept, and an archive's member never lands on the API's host.
"""

from __future__ import annotations

import asyncio
import uuid

from device_pool.providers.redroid.config import LABEL_IMAGE, LABEL_PERSONAL, RedroidConfig
from device_pool.providers.redroid.engine import Engine

PROVIDER = "redroid"


def personal_volume_name(pool_id: str, personal_phone_id: uuid.UUID) -> str:
    """The name of a personal phone's data volume on a pool's engine."""
    return f"phonefleet-{pool_id}-personal-{uuid.UUID(str(personal_phone_id))}"


def personal_volume_labels(config: RedroidConfig, personal_phone_id: uuid.UUID, image: str | None = None) -> dict[str, str]:
    """A personal volume's labels: ours, role ``personal``, its phone, the image that made its data."""
    return {**config.labels_for("personal"), LABEL_IMAGE: image or config.image_ref,
            LABEL_PERSONAL: str(personal_phone_id)}  # fmt: skip


class PersonalVolumes:
    """One redroid pool's personal volumes, read and made whole (export and import)."""

    def __init__(self, config: RedroidConfig) -> None:
        self.config = config
        self.engine = Engine(config.docker_url, provider=PROVIDER, timeout_s=config.command_timeout_s)

    def name(self, personal_phone_id: uuid.UUID) -> str:
        return personal_volume_name(self.config.pool_id, personal_phone_id)

    async def image_of(self, personal_phone_id: uuid.UUID) -> str | None:
        """The image that made the phone's data; None when it has no volume yet (never woken)."""
        labels = await asyncio.to_thread(self.engine.volume_labels, self.name(personal_phone_id))
        return None if labels is None else labels.get(LABEL_IMAGE, self.config.image_ref)

    async def read(self, personal_phone_id: uuid.UUID, *, max_bytes: int) -> bytes | None:
        """The volume's contents as a tar with members under ``data/``; None when there is no volume
        (the phone was never woken: it is in factory state). Raises ``VolumeTooLarge``, ``ProviderError``."""
        volume = self.name(personal_phone_id)
        if not await asyncio.to_thread(self.engine.has_volume, volume):
            return None
        return await asyncio.to_thread(
            self.engine.read_volume, volume, image=self.config.image_ref,
            labels=self.config.labels_for("archive"), max_bytes=max_bytes,
        )  # fmt: skip

    async def write(self, personal_phone_id: uuid.UUID, tar: bytes, *, image: str | None) -> None:
        """A new volume for the phone holding ``tar``'s ``data/`` members, labelled as made by
        ``image`` (the exporting pool's; a pool running another refuses to wake it)."""
        await asyncio.to_thread(
            self.engine.fill_volume, self.name(personal_phone_id), tar, image=self.config.image_ref,
            labels=personal_volume_labels(self.config, personal_phone_id, image),
        )  # fmt: skip

    async def remove(self, personal_phone_id: uuid.UUID) -> None:
        await asyncio.to_thread(self.engine.remove_volume, self.name(personal_phone_id))

    def close(self) -> None:
        self.engine.close()


__all__ = ["PersonalVolumes", "personal_volume_labels", "personal_volume_name"]
