"""Bodies of ``/api/v1/share-links`` and of the share page's own calls (``/share/{token}/…``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field

from orchestrator.api.live import WebRtcOfferIn
from orchestrator.db import ShareLink, ShareLinkOpen
from orchestrator.services.share_links import LinkState, ShareLinkSpec

__all__ = ["ShareLinkCreate", "ShareLinkOut", "ShareOfferIn", "ShareOpenOut"]


class ShareLinkCreate(ShareLinkSpec):
    """Share one phone: a task's, a session's, or (the operator) a device."""


class ShareOpenRecord(BaseModel):
    """One opening of the link's page."""

    at: dt.datetime
    client: str | None = Field(description="The address it was opened from.")
    user_agent: str | None

    @classmethod
    def of(cls, row: ShareLinkOpen) -> ShareOpenRecord:
        return cls(at=row.created_at, client=row.client, user_agent=row.user_agent)


class ShareLinkOut(BaseModel):
    """A share link. `url` (with its token) is in the answer to its creation only."""

    id: uuid.UUID
    url: str | None = Field(default=None, description="The page to open or embed; shown once.")
    kind: str = Field(description="`task`, `session` or `device`.")
    target_id: uuid.UUID
    mode: str
    created_at: dt.datetime
    expires_at: dt.datetime
    max_uses: int | None
    uses: int
    revoked_at: dt.datetime | None
    created_by: uuid.UUID | None = Field(description="The user who made it.")
    opens: list[ShareOpenRecord] = Field(default_factory=list, description="Newest first (at most 100).")

    @classmethod
    def of(cls, row: ShareLink, opens: list[ShareLinkOpen] = (), *, url: str | None = None) -> ShareLinkOut:  # type: ignore[assignment]
        return cls(
            id=row.id, url=url, kind=row.kind, target_id=row.target_id, mode=row.mode, created_at=row.created_at,
            expires_at=row.expires_at, max_uses=row.max_uses, uses=row.uses, revoked_at=row.revoked_at,
            created_by=row.user_id, opens=[ShareOpenRecord.of(o) for o in opens],
        )  # fmt: skip


class ShareOpenOut(BaseModel):
    """What the share page learns when it opens: what it shows, and the id its offer presents."""

    open_id: uuid.UUID
    mode: str
    kind: str
    ended: bool = Field(description="The task or session is over: show its final state, not the live view.")
    status: str
    expires_at: dt.datetime
    screenshot: str | None = Field(description="The final screenshot's URL (an ended task).")
    recording: str | None = Field(description="The recording's URL, where one was made (an ended task or session).")
    ice_servers: list[dict[str, Any]]

    @classmethod
    def of(cls, state: LinkState, *, token: str, ice_servers: list[dict[str, Any]], recording: bool) -> ShareOpenOut:
        link = state.link
        shot = f"/share/{token}/screenshot" if state.ended and state.has_screenshot else None
        return cls(
            open_id=state.open_id, mode=link.mode, kind=link.kind, ended=state.ended, status=state.status,
            expires_at=link.expires_at, screenshot=shot,
            recording=f"/share/{token}/recording" if state.ended and recording else None, ice_servers=ice_servers,
        )  # fmt: skip


class ShareOfferIn(WebRtcOfferIn):
    """The page's offer, with the ``open_id`` its opening got."""

    open_id: uuid.UUID
