"""Share links: one phone's live view for whoever holds the link, no API key (docs/api.md, "Share links").

A link names one target — a task, a session, or (the operator only: devices are the fleet's) a
device — and a mode: ``view`` never sends input; ``control`` may, when the target itself allows it
(a task ``waiting_for_user`` or ``user_control``, an active session; ``live/access.py``), acting as
the user who made the link. Its token reads ``pfs_<random>`` (256 random bits); only its sha256 is
stored (``hash_secret``, as for API keys), so the link's URL is shown once, at creation.

Who may make one: whoever may see the target and act on it — a task's owner (the user whose key
submitted it) or an admin of its tenant; a session's user or an admin of its tenant; the operator
for a device. Reading and revoking: the link's maker and its tenant's admins.

Opening (``open``) is what the share page does first: it counts one use (refused past
``max_uses``), records when and from which address, and hands the page an open id (random) that
its later calls (the WebRTC offer) present, so ``max_uses`` bounds pages, not requests.

A link is over when revoked (``share_link_not_found``, 404, as for a token that never existed) or
past its expiry or its uses (``share_link_expired``, 410). Revoking closes its open viewers at once
in this API process (the route asks the live hub); other processes' viewers close at their next
lease check (``webrtc.lease_check_s``), which also closes those of a link that expired meanwhile.
A task's link outlives the task: after it ended the page shows its last screenshot (and its
recording, where one was made) until the link expires.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import or_, select, update

from orchestrator.db import (
    DbSession,
    Device,
    DeviceSession,
    SessionState,
    ShareLink,
    ShareLinkOpen,
    Task,
    UserRole,
    utcnow,
)
from orchestrator.db.database import Database
from orchestrator.errors import (
    DeviceNotFound,
    InvalidRequest,
    PermissionDenied,
    SessionNotFound,
    ShareLinkExpired,
    ShareLinkNotFound,
)
from orchestrator.services.audit import record_audit
from orchestrator.services.auth import Principal, hash_secret, require_operator
from orchestrator.services.sessions import session_due
from orchestrator.services.tasks import load_task, task_owner
from orchestrator.settings import ShareLinkSettings

__all__ = [
    "TOKEN_PREFIX",
    "IssuedLink",
    "LinkState",
    "ShareLinkService",
    "ShareLinkSpec",
    "link_principal",
]

TOKEN_PREFIX = "pfs_"
ShareKind = Literal["task", "session", "device"]
ShareMode = Literal["view", "control"]
_MAX_OPENS_SHOWN = 100  # a link's opens in its answer, newest first


class ShareLinkSpec(BaseModel):
    """``POST /api/v1/share-links``: exactly one of ``task_id``, ``session_id``, ``device_id``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"task_id": "00000000-0000-4000-8000-000000000000", "mode": "view", "expires_in_s": 3600}]
        },
    )

    task_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = Field(default=None, description="The operator only: devices are the fleet's.")
    mode: ShareMode = Field(default="view", description="`view` never sends input; `control` may, when the target allows it.")
    expires_in_s: int | None = Field(default=None, ge=1, description="Default `share_links.default_expires_in_s`.")
    max_uses: int | None = Field(default=None, ge=1, le=1_000_000, description="Openings of the page; none: no limit.")

    @model_validator(mode="after")
    def _one_target(self) -> ShareLinkSpec:
        given = [name for name in ("task_id", "session_id", "device_id") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of task_id, session_id, device_id (got {len(given)})")
        return self

    @property
    def target(self) -> tuple[ShareKind, uuid.UUID]:
        for kind in ("task", "session", "device"):
            value = getattr(self, f"{kind}_id")
            if value is not None:
                return kind, value  # type: ignore[return-value]
        raise AssertionError("validated: one target")


@dataclass(frozen=True)
class IssuedLink:
    """A new link: ``token`` is the only time it is ever available."""

    row: ShareLink
    token: str


@dataclass(frozen=True)
class LinkState:
    """What the share page is told when it opens: the link, and whether its target has ended."""

    link: ShareLink
    open_id: uuid.UUID
    ended: bool
    status: str  # the task's status or the session's state ("live" for a device)
    has_screenshot: bool


def link_principal(link: ShareLink) -> Principal:
    """Who a link's viewer acts as: its maker in its tenant (a device link: the operator that made
    it, who watches an unheld phone). ``key_id`` is the link's id: no API key is behind it."""
    role = UserRole.OPERATOR if link.kind == "device" else UserRole.MEMBER
    return Principal(key_id=link.id, tenant_id=link.tenant_id, user_id=link.user_id or link.id, role=role)


class ShareLinkService:
    def __init__(self, db: Database, settings: ShareLinkSettings) -> None:
        self.db = db
        self.settings = settings

    # --- the maker's side (API key) --------------------------------------------------------------

    async def create(self, principal: Principal, spec: ShareLinkSpec) -> IssuedLink:
        """Raises ``TaskNotFound``/``SessionNotFound``/``DeviceNotFound``, ``PermissionDenied``
        (not the target's owner nor an admin; a device from anyone but the operator), ``InvalidRequest``."""
        kind, target_id = spec.target
        expires_in_s = spec.expires_in_s or self.settings.default_expires_in_s
        if expires_in_s > self.settings.max_expires_in_s:
            raise InvalidRequest(
                f"expires_in_s {expires_in_s} is over share_links.max_expires_in_s ({self.settings.max_expires_in_s})"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        async with self.db.transaction() as db_session:
            await self._check_target(db_session, principal, kind, target_id)
            row = ShareLink(
                id=uuid.uuid4(), created_at=now, tenant_id=principal.tenant_id, user_id=principal.user_id,
                key_id=principal.key_id, token_hash=hash_secret(token), kind=kind, target_id=target_id,
                mode=spec.mode, expires_at=now + dt.timedelta(seconds=expires_in_s), max_uses=spec.max_uses,
                uses=0,
            )  # fmt: skip
            db_session.add(row)
            await db_session.flush()
            await record_audit(
                db_session, principal, "share_link.create", target=f"share_link:{row.id}",
                detail={"kind": kind, "target_id": str(target_id), "mode": spec.mode,
                        "expires_at": row.expires_at.isoformat(), "max_uses": spec.max_uses},
            )  # fmt: skip
        return IssuedLink(row, token)

    async def list(
        self, principal: Principal, *, limit: int, target_id: uuid.UUID | None = None
    ) -> list[tuple[ShareLink, list[ShareLinkOpen]]]:
        """The tenant's links (a member: its own), newest first; only one task's, session's or
        device's with ``target_id`` (the dashboard's Share dialog lists a page's own)."""
        query = self._visible(principal)
        if target_id is not None:
            query = query.where(ShareLink.target_id == target_id)
        query = query.order_by(ShareLink.created_at.desc(), ShareLink.id.desc()).limit(limit)
        async with self.db.transaction() as db_session:
            rows = list(await db_session.scalars(query))
            opens = await self._opens(db_session, [row.id for row in rows])
        return [(row, opens.get(row.id, [])) for row in rows]

    async def get(self, principal: Principal, link_id: uuid.UUID) -> tuple[ShareLink, list[ShareLinkOpen]]:
        async with self.db.transaction() as db_session:
            row = await self._load(db_session, principal, link_id)
            opens = await self._opens(db_session, [row.id])
        return row, opens.get(row.id, [])

    async def revoke(self, principal: Principal, link_id: uuid.UUID) -> ShareLink:
        """Revoked from now on (idempotent: a revoked link answers as it is). The caller closes its
        viewers (``LiveHub.close_share``)."""
        async with self.db.transaction() as db_session:
            row = await self._load(db_session, principal, link_id, for_update=True)
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                await record_audit(db_session, principal, "share_link.revoke", target=f"share_link:{row.id}",
                                   detail={"kind": row.kind, "target_id": str(row.target_id)})  # fmt: skip
        return row

    # --- the holder's side (token) ---------------------------------------------------------------

    async def open(self, token: str, *, client: str | None, user_agent: str | None) -> LinkState:
        """Count one use and record it. Raises ``ShareLinkNotFound`` (unknown or revoked),
        ``ShareLinkExpired`` (past its expiry or its ``max_uses``)."""
        token_hash = _token_hash(token)
        now = utcnow()
        async with self.db.transaction() as db_session:
            counted = await db_session.execute(
                update(ShareLink)
                .where(
                    ShareLink.token_hash == token_hash,
                    ShareLink.revoked_at.is_(None),
                    ShareLink.expires_at > now,
                    or_(ShareLink.max_uses.is_(None), ShareLink.uses < ShareLink.max_uses),
                )
                .values(uses=ShareLink.uses + 1)
                .returning(ShareLink.id)
            )
            link_id = counted.scalar()
            if link_id is None:
                _refuse(await db_session.scalar(select(ShareLink).where(ShareLink.token_hash == token_hash)), now)
            link = await db_session.get(ShareLink, link_id)
            assert link is not None
            opened = ShareLinkOpen(
                id=uuid.uuid4(), created_at=now, tenant_id=link.tenant_id, link_id=link.id,
                client=(client or "")[:100] or None, user_agent=(user_agent or "")[:300] or None,
            )  # fmt: skip
            db_session.add(opened)
            ended, status, has_screenshot = await _target_now(db_session, link)
        return LinkState(link, opened.id, ended, status, has_screenshot)

    async def state(self, token: str, open_id: uuid.UUID) -> LinkState:
        """What an opened page shows now (its target may have ended since), counting no use.
        Raises ``ShareLinkNotFound``, ``ShareLinkExpired``."""
        link = await self.resolve(token, open_id)
        async with self.db.transaction() as db_session:
            ended, status, has_screenshot = await _target_now(db_session, link)
        return LinkState(link, open_id, ended, status, has_screenshot)

    async def resolve(self, token: str, open_id: uuid.UUID | None = None) -> ShareLink:
        """The live link of ``token`` (and, given ``open_id``, one of its openings: what a page's
        later calls present). Raises ``ShareLinkNotFound``, ``ShareLinkExpired``."""
        token_hash = _token_hash(token)
        async with self.db.transaction() as db_session:
            link = await db_session.scalar(select(ShareLink).where(ShareLink.token_hash == token_hash))
            now = utcnow()
            if link is None or link.revoked_at is not None or link.expires_at <= now:
                _refuse(link, now)
            assert link is not None
            if open_id is not None:
                found = await db_session.scalar(
                    select(ShareLinkOpen.id).where(ShareLinkOpen.id == open_id, ShareLinkOpen.link_id == link.id)
                )
                if found is None:
                    raise ShareLinkNotFound("this share link was not opened with that open_id; reload the page")
        return link

    # --- helpers ---------------------------------------------------------------------------------

    def _visible(self, principal: Principal) -> Any:
        query = select(ShareLink).where(ShareLink.tenant_id == principal.tenant_id)
        return query if principal.is_admin else query.where(ShareLink.user_id == principal.user_id)

    async def _load(
        self, db_session: DbSession, principal: Principal, link_id: uuid.UUID, *, for_update: bool = False
    ) -> ShareLink:
        query = self._visible(principal).where(ShareLink.id == link_id)
        row = await db_session.scalar(query.with_for_update() if for_update else query)
        if row is None:
            raise ShareLinkNotFound(f"no share link {link_id}", context={"share_link_id": str(link_id)})
        return row

    async def _opens(self, db_session: DbSession, link_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[ShareLinkOpen]]:
        found: dict[uuid.UUID, list[ShareLinkOpen]] = {}
        if not link_ids:
            return found
        query = (
            select(ShareLinkOpen)
            .where(ShareLinkOpen.link_id.in_(link_ids))
            .order_by(ShareLinkOpen.created_at.desc(), ShareLinkOpen.id)
        )
        for row in await db_session.scalars(query):
            shown = found.setdefault(row.link_id, [])
            if len(shown) < _MAX_OPENS_SHOWN:
                shown.append(row)
        return found

    async def _check_target(self, db_session: DbSession, principal: Principal, kind: str, target_id: uuid.UUID) -> None:
        if kind == "device":
            require_operator(principal, "devices are the fleet's: only the operator shares a device_id")
            if await db_session.get(Device, target_id) is None:
                raise DeviceNotFound(target_id)
        elif kind == "task":
            task = await load_task(db_session, principal, target_id)
            if not principal.is_admin and await task_owner(db_session, task) != principal.user_id:
                raise PermissionDenied("a task is shared by the user who submitted it or an admin of its tenant")
        else:
            row = await db_session.scalar(
                select(DeviceSession).where(
                    DeviceSession.id == target_id, DeviceSession.tenant_id == principal.tenant_id
                )
            )
            if row is None or row.device_id is None:
                raise SessionNotFound(target_id)
            if not principal.is_admin and row.user_id not in (None, principal.user_id):
                raise PermissionDenied("a session is shared by its user or an admin of its tenant")


def _token_hash(token: str) -> str:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        raise ShareLinkNotFound("no such share link")
    return hash_secret(token)


def _refuse(link: ShareLink | None, now: dt.datetime) -> None:
    """Why a token is not usable now: raises, always."""
    if link is None or link.revoked_at is not None:
        raise ShareLinkNotFound("no such share link (it may have been revoked)")
    if link.expires_at <= now:
        raise ShareLinkExpired(f"this share link expired at {link.expires_at.isoformat()}")
    raise ShareLinkExpired(f"this share link has been opened its {link.max_uses} times (max_uses)")


async def _target_now(db_session: DbSession, link: ShareLink) -> tuple[bool, str, bool]:
    """(ended, status, whether a final screenshot may exist) of the link's target now."""
    if link.kind == "task":
        task = await db_session.get(Task, link.target_id)
        if task is None:
            return True, "deleted", False
        return task.status.is_final, task.status.value, True
    if link.kind == "session":
        row = await db_session.get(DeviceSession, link.target_id)
        if row is None:
            return True, "deleted", False
        state = SessionState.EXPIRED if session_due(row) else row.state
        return state != SessionState.ACTIVE, state.value, False
    return False, "live", False
