"""Recordings of tasks and sessions: where they are, who may play them, their bytes (docs/recordings.md).

The recorder (``orchestrator/live/recorder.py``) writes a task's recording in its worker and a
session's in the API process, at ``{data_dir}/tasks/<id>/recording.mp4`` (beside the task's
screenshots: the retention reaper and a tenant's deletion remove it with them) and
``{data_dir}/sessions/<id>/recording.mp4``. One is served once its task or session has ended: it
is complete then (the worker finishes the file before it writes the task's end), never a file
still being written.

Access is the task's (its tenant's callers), except a recording sealed because its tenant has
redaction on (the video is not masked): only the tenant's admins and the task's owner (the user
whose key submitted it; for a session, the user who opened it) may play it, opened here in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from orchestrator.db import Device, DeviceSession, SessionState
from orchestrator.db.database import Database
from orchestrator.db.redaction import text_redaction_on
from orchestrator.encryption import (
    SCREENSHOT_MAGIC,
    SealedDamaged,
    SealedWithOtherKey,
    read_stored,
    screenshot_cipher,
)
from orchestrator.errors import NotFound, PermissionDenied, SessionNotFound, StoredFileUnreadable
from orchestrator.live.recorder import Recorder, record, recording_file
from orchestrator.services.auth import Principal
from orchestrator.services.tasks import load_task, task_owner
from orchestrator.settings import Settings

__all__ = ["Recording", "RecordingService", "SessionRecorders", "recording_path"]

logger = logging.getLogger(__name__)

KINDS = ("task", "session")


def recording_path(settings: Settings, kind: str, id: uuid.UUID | str) -> Path | None:
    """The recording of the task or session ``id`` (``kind``: "task" or "session") if one was
    written, else None. The caller checks who may see it, and whether it is sealed (``is_sealed``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    path = recording_file(settings.data_dir, kind, uuid.UUID(str(id)))
    return path if path.is_file() else None


def is_sealed(path: Path) -> bool:
    """Whether a recording is stored encrypted (its tenant had redaction on)."""
    with path.open("rb") as file:
        return file.read(len(SCREENSHOT_MAGIC)) == SCREENSHOT_MAGIC


async def shareable_path(settings: Settings, kind: str, id: uuid.UUID) -> Path | None:
    """The recording a share link may show (a device link has none). A sealed one never: its
    tenant has redaction on, and only the tenant's admins and the owner play those (a link's
    holder is neither)."""
    if kind not in KINDS:
        return None
    path = recording_path(settings, kind, id)
    return None if path is None or await asyncio.to_thread(is_sealed, path) else path


@dataclass(frozen=True)
class Recording:
    """A recording to serve: a plain file (``data`` None), or a sealed one's plain bytes."""

    path: Path
    filename: str
    data: bytes | None = None


class RecordingService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def task_recording(self, principal: Principal, task_id: uuid.UUID) -> Recording:
        """The recording of an ended task of the caller's tenant. Raises ``TaskNotFound``,
        ``NotFound`` (none: not ended yet, recording off, or the phone could not be captured),
        ``PermissionDenied`` (sealed, and the caller is neither an admin nor its owner),
        ``StoredFileUnreadable``."""
        async with self.db.transaction() as db_session:
            task = await load_task(db_session, principal, task_id)
            owner = await task_owner(db_session, task)
        if not task.status.is_final:
            raise NotFound(f"task {task_id} has not ended: its recording is ready once it has")
        return await self._open("task", task_id, principal, owner)

    async def session_recording(self, principal: Principal, session_id: uuid.UUID) -> Recording:
        """The recording of an ended session of the caller's tenant (as ``task_recording``)."""
        async with self.db.transaction() as db_session:
            row = await db_session.scalar(
                select(DeviceSession).where(
                    DeviceSession.id == session_id, DeviceSession.tenant_id == principal.tenant_id
                )
            )
        if row is None:
            raise SessionNotFound(session_id)
        if row.state == SessionState.ACTIVE:
            raise NotFound(f"session {session_id} is open: its recording is ready once it has ended")
        return await self._open("session", session_id, principal, row.user_id)

    async def archived(self, principal: Principal, task_id: uuid.UUID) -> Iterator[bytes] | None:
        """The recording's bytes in pieces for a trajectory zip (a blocking iterator), or None when
        the task has none the caller may play."""
        try:
            recording = await self.task_recording(principal, task_id)
        except (NotFound, PermissionDenied, StoredFileUnreadable):
            return None
        if recording.data is not None:
            return iter([recording.data])
        return _pieces(recording.path)

    async def _open(
        self, kind: str, id: uuid.UUID, principal: Principal, owner: uuid.UUID | None
    ) -> Recording:
        path = recording_path(self.settings, kind, id)
        if path is None:
            raise NotFound(f"{kind} {id} has no recording")
        filename = f"{kind}-{id}.mp4"
        if not await asyncio.to_thread(is_sealed, path):
            return Recording(path, filename)
        if not (principal.is_admin or principal.user_id == owner):
            raise PermissionDenied(
                f"the recording of {kind} {id} is encrypted (its tenant has redaction on): only the "
                f"tenant's admins and the {kind}'s owner may play it"
            )
        try:
            data = await asyncio.to_thread(read_stored, path, screenshot_cipher(self.settings))
        except (SealedWithOtherKey, SealedDamaged) as exc:
            raise StoredFileUnreadable(
                f"the recording of {kind} {id} cannot be opened with storage.encryption_key: {exc}"
            ) from None
        return Recording(path, filename, data)


def _pieces(path: Path, size: int = 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as file:
        while piece := file.read(size):
            yield piece


class SessionRecorders:
    """The recordings of the sessions this API process opened: started with the session, finished
    when it closes here (before ``closed`` is written) or, ended elsewhere (expired by the sweeper,
    closed through another API process), within ``check_s`` of that."""

    def __init__(self, db: Database, settings: Settings, *, check_s: float = 2.0) -> None:
        self.db = db
        self.settings = settings
        self.check_s = check_s
        self._starting: dict[uuid.UUID, asyncio.Task[Recorder | None]] = {}
        self._watcher: asyncio.Task[None] | None = None

    def start(self, session_id: uuid.UUID, tenant_id: uuid.UUID, device: Device) -> None:
        """Start recording the session's phone, in the background (its answer does not wait)."""
        if not self.settings.recording.enabled or session_id in self._starting:
            return
        self._starting[session_id] = asyncio.create_task(
            self._record(session_id, tenant_id, device), name=f"session-recorder-{session_id}"
        )
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="session-recorders")

    async def stop(self, session_id: uuid.UUID) -> None:
        """Finish the session's recording (nothing when this process does not record it)."""
        task = self._starting.pop(session_id, None)
        if task is None:
            return
        try:
            recorder = await task
        except Exception:
            logger.exception("session recording failed", extra={"session_id": str(session_id)})
            return
        if recorder is not None:
            await recorder.stop()

    async def close(self) -> None:
        """Finish every recording (the app's shutdown)."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for session_id in list(self._starting):
            await self.stop(session_id)

    @property
    def recording(self) -> set[uuid.UUID]:
        return set(self._starting)

    async def _record(self, session_id: uuid.UUID, tenant_id: uuid.UUID, device: Device) -> Recorder | None:
        redacted = await text_redaction_on(self.db, tenant_id, self.settings.redaction.text_tenants)
        web = self.settings.webrtc
        return await record(
            self.settings, "session", session_id, device.serial, redacted=redacted, provider=device.provider,
            labels=device.labels, adb_host=web.adb_host, adb_port=web.adb_port,
        )  # fmt: skip

    async def _watch(self) -> None:
        while self._starting:
            await asyncio.sleep(self.check_s)
            ids = list(self._starting)
            try:
                async with self.db.transaction() as db_session:
                    active = set(
                        await db_session.scalars(
                            select(DeviceSession.id).where(
                                DeviceSession.id.in_(ids), DeviceSession.state == SessionState.ACTIVE
                            )
                        )
                    )
            except Exception as exc:  # a database hiccup must not end the watch: next round
                logger.warning("session recordings check failed", extra={"error": str(exc)})
                continue
            for session_id in ids:
                if session_id not in active:
                    await self.stop(session_id)
