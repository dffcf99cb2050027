"""Share links (docs/api.md, "Share links"): ``/api/v1/share-links`` for their makers (API key), and
``/share/{token}…`` for whoever holds one (no key: the token is the credential).

``GET /share/{token}`` is the embeddable page (``web/share.html``: the phone alone, no dashboard),
whose Content-Security-Policy lets ``share_links.frame_ancestors`` frame it. The page then calls
``POST /share/{token}/open`` (counts a use, records the opening), ``POST /share/{token}/webrtc``
(the live view, with the open's id), ``GET /share/{token}/state`` (again, when its viewer closed), and for an ended task ``/share/{token}/screenshot`` and
``/share/{token}/recording``. The token routes are kept out of the OpenAPI schema: they are the
page's, not a client's.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response

from orchestrator.api.dashboard import WEB_DIR
from orchestrator.api.deps import CurrentPrincipal, SettingsDep, StepServiceDep
from orchestrator.api.live import LiveHubDep, WebRtcAnswerOut
from orchestrator.api.schemas import ErrorOut
from orchestrator.api.schemas.share_links import ShareLinkCreate, ShareLinkOut, ShareOfferIn, ShareOpenOut
from orchestrator.api.tasks import image_response
from orchestrator.errors import NotFound, ScreenshotNotFound
from orchestrator.live import LiveTarget
from orchestrator.services import recordings
from orchestrator.services.share_links import LinkState, ShareLinkService, link_principal
from orchestrator.settings import Settings

__all__ = ["page_headers", "router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    404: {"model": ErrorOut, "description": "No such share link (or target) in your tenant"},
}


def _service(request: Request) -> ShareLinkService:
    return ShareLinkService(request.app.state.services.db, request.app.state.settings.share_links)


ShareLinkServiceDep = Annotated[ShareLinkService, Depends(_service)]

router = APIRouter(tags=["share links"], responses=_ERRORS)


# --- the maker's routes ------------------------------------------------------------------------


@router.post(
    "/api/v1/share-links", status_code=201, summary="Share a phone's live view (a link, no API key needed)",
    responses={
        403: {"model": ErrorOut, "description": "Not the target's owner nor an admin; a device_id from anyone but the operator"},
        422: {"model": ErrorOut, "description": "None or several targets; expires_in_s over the maximum"},
    },
)  # fmt: skip
async def create_share_link(
    body: ShareLinkCreate, request: Request, principal: CurrentPrincipal, links: ShareLinkServiceDep
) -> ShareLinkOut:
    """`url` opens the phone's live view alone (embeddable) for anyone who has it, until it expires,
    is revoked, or has been opened `max_uses` times. It is shown in this answer only."""
    issued = await links.create(principal, body)
    url = str(request.base_url).rstrip("/") + f"/share/{issued.token}"
    return ShareLinkOut.of(issued.row, url=url)


@router.get("/api/v1/share-links", summary="Your tenant's share links (a member: its own), newest first")
async def list_share_links(
    principal: CurrentPrincipal, links: ShareLinkServiceDep, limit: Annotated[int, Query(ge=1, le=200)] = 100,
    target_id: Annotated[uuid.UUID | None, Query(description="Only the links to this task, session or device.")] = None,
) -> list[ShareLinkOut]:
    found = await links.list(principal, limit=limit, target_id=target_id)
    return [ShareLinkOut.of(row, opens) for row, opens in found]


@router.get("/api/v1/share-links/{share_link_id}", summary="One share link, with its openings")
async def get_share_link(share_link_id: uuid.UUID, principal: CurrentPrincipal, links: ShareLinkServiceDep) -> ShareLinkOut:
    return ShareLinkOut.of(*await links.get(principal, share_link_id))


@router.delete("/api/v1/share-links/{share_link_id}", summary="Revoke a share link (its open viewers close now)")
async def revoke_share_link(
    share_link_id: uuid.UUID, principal: CurrentPrincipal, links: ShareLinkServiceDep, hub: LiveHubDep
) -> ShareLinkOut:
    """From now on the link answers 404 `share_link_not_found`; viewers watching through it are closed."""
    row = await links.revoke(principal, share_link_id)
    await hub.close_share(row.id)
    return ShareLinkOut.of(*await links.get(principal, row.id))


# --- the holder's routes (the token is the credential) -------------------------------------------


def page_headers(settings: Settings) -> dict[str, str]:
    """The share page's headers: the dashboard's strict policy, but framable by the configured origins,
    and no Referer (the URL holds the token)."""
    ancestors = " ".join(["'self'", *settings.share_links.frame_ancestors])
    return {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex",
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
            f"form-action 'none'; frame-ancestors {ancestors}"
        ),
    }


@router.get("/share/{token}", include_in_schema=False)
async def share_page(token: str, settings: SettingsDep) -> Response:
    """The page itself is the same for every token (it learns the rest from ``open``)."""
    del token
    page = WEB_DIR / "share.html"
    if not page.is_file():
        raise NotFound(f"the share page is not installed ({page} is missing)")
    return FileResponse(page, media_type="text/html", headers=page_headers(settings))


@router.post("/share/{token}/open", include_in_schema=False)
async def open_share(token: str, request: Request, links: ShareLinkServiceDep, hub: LiveHubDep) -> ShareOpenOut:
    state = await links.open(
        token, client=request.client.host if request.client else None, user_agent=request.headers.get("user-agent")
    )
    return await _page_state(request, hub, token, state)


@router.get("/share/{token}/state", include_in_schema=False)
async def share_state(token: str, open_id: uuid.UUID, request: Request, links: ShareLinkServiceDep,
                      hub: LiveHubDep) -> ShareOpenOut:  # fmt: skip
    """The opened page asks again (its viewer was closed, or the phone was not there yet): no use counted."""
    state = await links.state(token, open_id)
    return await _page_state(request, hub, token, state)


@router.post("/share/{token}/webrtc", include_in_schema=False)
async def share_webrtc(token: str, offer: ShareOfferIn, links: ShareLinkServiceDep, hub: LiveHubDep) -> WebRtcAnswerOut:
    """The live view as the link's maker would see it; input only for a `control` link, and only
    when the target allows it (checked for every message)."""
    link = await links.resolve(token, offer.open_id)
    target = LiveTarget(link.kind, link.target_id)  # type: ignore[arg-type]
    answer = await hub.open(
        link_principal(link), target, offer.sdp, share_link_id=link.id, view_only=link.mode != "control"
    )
    return WebRtcAnswerOut.of(answer)


@router.get("/share/{token}/screenshot", include_in_schema=False)
async def share_screenshot(token: str, links: ShareLinkServiceDep, steps: StepServiceDep) -> Response:
    """An ended task's final state: its newest screenshot."""
    link = await links.resolve(token)
    if link.kind != "task":
        raise ScreenshotNotFound("only a task's share link has a final screenshot")
    return image_response(await steps.last_screenshot(link.tenant_id, link.target_id))


@router.get("/share/{token}/recording", include_in_schema=False)
async def share_recording(token: str, request: Request, links: ShareLinkServiceDep) -> Response:
    """The target's recording (video/mp4, Range requests answered), where one was made."""
    link = await links.resolve(token)
    path = await recordings.shareable_path(request.app.state.settings, link.kind, link.target_id)
    if path is None:
        raise NotFound(f"no recording of this {link.kind}")
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, no-store"})


async def _page_state(request: Request, hub: Any, token: str, state: LinkState) -> ShareOpenOut:
    link = state.link
    recording = state.ended and (
        await recordings.shareable_path(request.app.state.settings, link.kind, link.target_id) is not None
    )
    return ShareOpenOut.of(state, token=token, ice_servers=hub.ice_servers(), recording=recording)
