"""The MCP tools: a phone held in a session (look, read, touch, type), whole tasks and their answers,
the fleet's devices, the caller's personal phones.

Each tool is one or a few REST calls with the caller's key, through the async client
(``orchestrator/async_client.py``, the same calls an integrator makes); what the API refuses
comes back as a tool error whose text is the API's status, code and message, for the model to read.
Answers are compact JSON text, screenshots image content sized for a model.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

import httpx
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from PIL import Image as PilImage
from pydantic import Field

from orchestrator.async_client import AsyncPhoneFleetClient
from orchestrator.client import FINAL_STATUSES, PhoneFleetAPIError, TaskWaitTimeout

__all__ = ["MAX_IMAGE_SIDE", "MAX_PULL_BYTES", "build_server"]

# Screenshots are scaled to fit this many pixels on their longer side: what vision models take in
# without downscaling again (and a phone's text stays readable).
MAX_IMAGE_SIDE = 1280
# A pulled file larger than this is not put in a model's context (the REST API pulls any size).
MAX_PULL_BYTES = 256 * 1024
# A task stops moving on its own at these: the answer says what it waits for.
_NEEDS_A_PERSON = frozenset({"awaiting_confirmation", "waiting_for_user"})

_INSTRUCTIONS = """PhoneFleet lends you real Android phones. Either hand a whole job to PhoneFleet's own
phone agent with run_task, or drive a phone yourself: start_session (answers a session_id), then loop
screenshot / ui_tree → tap, swipe, type_text, press_key, launch_app, and end_session when done (a
session nobody keeps alive ends by itself after its ttl_s). Prefer tapping by element_id from ui_tree
over pixel coordinates. A task that stops to ask a person (a payment to confirm, a question) waits for
answer_task: ask your user, never decide for them."""

SessionId = Annotated[str, Field(description="The session_id that start_session answered.")]
ClientFor = Callable[[Context], AsyncPhoneFleetClient]


def _text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """A refusal or an unreachable API becomes a ToolError the model can read."""
    try:
        yield
    except PhoneFleetAPIError as exc:
        raise ToolError(f"{exc.status} {exc.code}: {exc.message}") from exc
    except httpx.HTTPError as exc:
        raise ToolError(f"cannot reach the PhoneFleet API: {type(exc).__name__}: {exc}") from exc


def build_server(client_for: ClientFor) -> MCPServer:
    """The tools, each calling the REST API through ``client_for(ctx)`` (the caller's key)."""
    server = MCPServer("phonefleet", instructions=_INSTRUCTIONS)

    async def session_input(ctx: Context, session_id: str, body: dict[str, Any]) -> str:
        with _refusals():
            return _text(await client_for(ctx).input(session_id, body))

    @server.tool(structured_output=False)
    async def list_devices(ctx: Context) -> str:
        """List the fleet's phones: id, state (idle phones can be leased now), provider and profile
        (screen width/height, Android version, apps). Use a profile's fields in start_session's
        device_profile to ask for a particular kind of phone."""
        with _refusals():
            items = [d async for d in client_for(ctx).devices(limit=100)]
        return _text([{k: d.get(k) for k in ("id", "state", "provider", "profile", "labels")} for d in items])

    @server.tool(structured_output=False)
    async def list_personal_phones(ctx: Context) -> str:
        """List your personal phones: phones of your own whose apps stay logged in between tasks.
        Answers id, name, state (asleep phones wake when used) and when each was last used. Pass an
        id as personal_phone_id to run_task or start_session."""
        with _refusals():
            items = [p async for p in client_for(ctx).personal_phones(limit=100)]
        keys = ("id", "name", "state", "last_used_at")
        return _text([{k: p.get(k) for k in keys} for p in items])

    @server.tool(structured_output=False)
    async def start_session(
        ctx: Context,
        ttl_s: Annotated[int, Field(ge=30, le=86400, description="Seconds the session lives without keep_alive.")] = 600,
        device_profile: Annotated[
            dict[str, Any] | str | None,
            Field(description='What the phone must match, e.g. {"android": "13"}, or a profile name. Any phone if omitted.'),
        ] = None,
        wait_s: Annotated[float, Field(ge=0, le=60, description="Seconds to wait for a free phone.")] = 10,
        personal_phone_id: Annotated[str | None, Field(
            description="Hold your own personal phone (list_personal_phones; its apps stay logged in) "
            "instead of a pooled one. Not with device_profile.")] = None,
    ) -> str:
        """Lease a phone for you alone and answer JSON with its session_id (pass it to every other
        phone tool), the phone's screen size and when the session expires. Call end_session when
        done; call keep_alive before expires_at to keep it longer."""
        with _refusals():
            session = await client_for(ctx).start_session(
                ttl_s=ttl_s, device_profile=device_profile, wait_s=wait_s, personal_phone_id=personal_phone_id
            )
        profile = session["device"].get("profile") or {}
        return _text({
            "session_id": session["id"], "device_id": session["device"]["id"], "state": session["state"],
            "screen": {"width": profile.get("width"), "height": profile.get("height")},
            "expires_at": session["expires_at"], "ttl_s": session["ttl_s"],
        })  # fmt: skip

    @server.tool(structured_output=False)
    async def keep_alive(ctx: Context, session_id: SessionId) -> str:
        """Extend a session by its ttl_s from now; answers the new expires_at."""
        with _refusals():
            session = await client_for(ctx).keepalive(session_id)
        return _text({"session_id": session["id"], "state": session["state"], "expires_at": session["expires_at"]})

    @server.tool(structured_output=False)
    async def end_session(ctx: Context, session_id: SessionId) -> str:
        """Give the phone back (it is wiped before anyone else gets it). Safe to call twice."""
        with _refusals():
            session = await client_for(ctx).close_session(session_id)
        return _text({"session_id": session["id"], "state": session["state"]})

    @server.tool(structured_output=False)
    async def screenshot(ctx: Context, session_id: SessionId) -> list[Any]:
        """See the phone's screen now, as an image. Coordinates for tap and swipe are the phone's
        screen pixels: the text beside the image says the screen size and how the image was scaled."""
        with _refusals():
            response = await client_for(ctx).screenshot_response(
                session_id, format="jpeg", quality=80, max_side=MAX_IMAGE_SIDE
            )
        width, height = int(response.headers["x-screen-width"]), int(response.headers["x-screen-height"])
        data = response.content
        size = await asyncio.to_thread(lambda: PilImage.open(io.BytesIO(data)).size)
        scale = size[0] / width
        note = f"Screen {width}x{height} pixels."
        if scale < 1:
            note += (f" This image is {size[0]}x{size[1]} (scaled by {scale:.3f}): divide its coordinates by "
                     f"{scale:.3f} to get screen pixels for tap and swipe.")  # fmt: skip
        return [Image(data=data, format="jpeg"), note + " Tapping by element_id from ui_tree is more precise."]

    @server.tool(structured_output=False)
    async def ui_tree(ctx: Context, session_id: SessionId) -> str:
        """Read the screen as data: the app in front (package) and its elements, each with an id
        (for tap's element_id), kind, text, description, resource_id, bounds [left, top, right,
        bottom] in screen pixels, and flags (clickable, editable, checkable/checked, scrollable,
        focused). Ids stay valid while the element stays on screen; read again after the screen changes."""
        with _refusals():
            return _text(await client_for(ctx).ui_tree(session_id))

    @server.tool(structured_output=False)
    async def tap(
        ctx: Context,
        session_id: SessionId,
        element_id: Annotated[str | None, Field(description="An element id from ui_tree (preferred).")] = None,
        x: Annotated[int | None, Field(ge=0, description="Screen pixels from the left (with y).")] = None,
        y: Annotated[int | None, Field(ge=0, description="Screen pixels from the top (with x).")] = None,
        long_press: Annotated[bool, Field(description="Press and hold (about 0.8 s) instead.")] = False,
    ) -> str:
        """Tap an element (element_id) or a point (x and y). Waits until the screen settles and
        answers where it tapped. Tap a text field before type_text."""
        body: dict[str, Any] = {"type": "long_press" if long_press else "tap"}
        body |= {"element_id": element_id} if element_id is not None else {"x": x, "y": y}
        return await session_input(ctx, session_id, body)

    @server.tool(structured_output=False)
    async def swipe(
        ctx: Context,
        session_id: SessionId,
        direction: Annotated[
            Literal["up", "down", "left", "right"] | None,
            Field(description="The way the finger moves across the middle of the screen: up scrolls to "
                  "show what is below."),
        ] = None,
        x1: Annotated[int | None, Field(ge=0)] = None,
        y1: Annotated[int | None, Field(ge=0)] = None,
        x2: Annotated[int | None, Field(ge=0)] = None,
        y2: Annotated[int | None, Field(ge=0)] = None,
        duration_ms: Annotated[int, Field(ge=20, le=10000)] = 300,
    ) -> str:
        """Swipe in a direction, or from (x1, y1) to (x2, y2) in screen pixels; to scroll, open a
        drawer, dismiss."""
        body: dict[str, Any] = {"type": "swipe", "duration_ms": duration_ms}
        if direction is not None:
            body["direction"] = direction
        else:
            body |= {"x1": x1, "y1": y1, "x2": x2, "y2": y2}
        return await session_input(ctx, session_id, body)

    @server.tool(structured_output=False)
    async def type_text(
        ctx: Context,
        session_id: SessionId,
        text: Annotated[str, Field(min_length=1, max_length=2000)],
        clear: Annotated[bool, Field(description="Empty the field first.")] = False,
    ) -> str:
        """Type into the text field that has focus (tap the field first). Does not press enter:
        press_key enter to submit."""
        return await session_input(ctx, session_id, {"type": "text", "text": text, "clear": clear})

    @server.tool(structured_output=False)
    async def press_key(
        ctx: Context,
        session_id: SessionId,
        key: Annotated[str, Field(description="back, home, recents, enter, delete, tab, space, up, down, …")],
    ) -> str:
        """Press a key: back (leave a screen, close the keyboard), home, recents, enter (submit),
        delete (backspace) and other Android keys by name."""
        return await session_input(ctx, session_id, {"type": "key", "key": key})

    @server.tool(structured_output=False)
    async def launch_app(
        ctx: Context,
        session_id: SessionId,
        app: Annotated[str, Field(description="An app name (Settings, Contacts, Notes …) or package name.")],
    ) -> str:
        """Open an app in front, by its name or package; answers the package that opened."""
        with _refusals():
            return _text(await client_for(ctx).launch(session_id, app))

    @server.tool(structured_output=False)
    async def push_file(
        ctx: Context,
        session_id: SessionId,
        path: Annotated[str, Field(description="Where on the phone, in its storage: /sdcard/Download/notes.txt.")],
        text: Annotated[str | None, Field(description="The file's content as text (written as UTF-8).")] = None,
        base64_data: Annotated[str | None, Field(description="Or the file's bytes, base64-encoded.")] = None,
    ) -> str:
        """Write a file on the session's phone, under /sdcard/ (the user's storage): give `text` or
        `base64_data`. Missing folders are made; a file already there is replaced."""
        if (text is None) == (base64_data is None):
            raise ToolError("give either text or base64_data, not both and not neither")
        try:
            data = text.encode() if text is not None else base64.b64decode(base64_data or "", validate=True)
        except binascii.Error as exc:
            raise ToolError(f"base64_data is not valid base64: {exc}") from exc
        with _refusals():
            return _text(await client_for(ctx).push_file(session_id, path, data))

    @server.tool(structured_output=False)
    async def pull_file(
        ctx: Context,
        session_id: SessionId,
        path: Annotated[str, Field(description="The file on the phone, under /sdcard/: /sdcard/Download/a.txt.")],
    ) -> str:
        """Read a file from the session's phone (under /sdcard/). Answers `{"path", "bytes", "text"}`
        for a UTF-8 text file, `{"path", "bytes", "base64"}` for any other; at most 256 KiB."""
        with _refusals():
            data = await client_for(ctx).pull_file(session_id, path)
        if len(data) > MAX_PULL_BYTES:
            raise ToolError(f"{path} is {len(data)} bytes; this tool reads at most {MAX_PULL_BYTES}")
        try:
            return _text({"path": path, "bytes": len(data), "text": data.decode()})
        except UnicodeDecodeError:
            return _text({"path": path, "bytes": len(data), "base64": base64.b64encode(data).decode()})

    @server.tool(structured_output=False)
    async def run_task(
        ctx: Context,
        instruction: Annotated[str, Field(min_length=1, max_length=4000, description="The job, in plain language.")],
        max_steps: Annotated[int | None, Field(ge=1, le=100)] = None,
        timeout_s: Annotated[int, Field(ge=10, le=3600, description="How long the task may run.")] = 600,
        device_profile: Annotated[dict[str, Any] | str | None, Field(description="As in start_session.")] = None,
        personal_phone_id: Annotated[str | None, Field(
            description="Run on your own personal phone (list_personal_phones), where your apps are "
            "logged in. Not with device_profile.")] = None,
    ) -> str:
        """Hand a whole job to PhoneFleet's phone agent on a phone of its own (not your session's),
        wait for it and answer its status, final message and steps. If it stops to ask a person (a
        sensitive action to confirm, a question), the answer says so (`waiting`) and the task keeps
        waiting: ask your user, then call answer_task with their decision."""
        client = client_for(ctx)
        fields: dict[str, Any] = {"max_steps": max_steps, "timeout_s": timeout_s, "device_profile": device_profile}
        if personal_phone_id is not None:
            fields["personal_phone_id"] = personal_phone_id
        with _refusals():
            task = await client.submit(instruction, **fields)
            # queued time comes before the task's own clock: a minute more
            return await _followed(client, task, timeout_s + 60)

    @server.tool(structured_output=False)
    async def answer_task(
        ctx: Context,
        task_id: Annotated[str, Field(description="The task_id run_task answered.")],
        approve: Annotated[bool | None, Field(
            description="For a task awaiting_confirmation: true lets the sensitive action happen, false "
            "refuses it. Decide only as your user told you.")] = None,
        reply: Annotated[str | None, Field(
            min_length=1, max_length=2000, description="For a task waiting_for_user with a question: "
            "the answer to give the agent.")] = None,
        wait_s: Annotated[int, Field(ge=0, le=3600, description="How long to wait for the task to end or ask "
                                     "again after the answer (0: answer at once).")] = 600,
    ) -> str:
        """Answer a task that stopped to ask a person — confirm or refuse a sensitive action (a
        payment, a message to send), or reply to its question — then wait for it as run_task does.
        Answering a task that is not waiting for that is refused (409)."""
        if (approve is None) == (reply is None):
            raise ToolError("give exactly one of approve (for a confirmation) or reply (for a question)")
        client = client_for(ctx)
        with _refusals():
            task = await (client.confirm(task_id, approve) if approve is not None else client.reply(task_id, reply or ""))
            return await _followed(client, task, wait_s)

    return server


async def _followed(client: AsyncPhoneFleetClient, task: dict[str, Any], wait_s: float) -> str:
    """The task once it ended or asks a person (or as it is after ``wait_s``), with its steps."""
    if wait_s > 0 and task.get("status") not in FINAL_STATUSES | _NEEDS_A_PERSON:
        try:
            task = await client.wait(task["id"], wait_s, until=FINAL_STATUSES | _NEEDS_A_PERSON)
        except TaskWaitTimeout as exc:
            task = exc.task
    steps = [s async for s in client.steps(task["id"])]
    return _text({
        "task_id": task["id"], "status": task["status"], "reason": task.get("reason"),
        "message": task.get("message"), "waiting": task.get("waiting"),
        "steps": [_step(s) for s in steps],
    })  # fmt: skip


def _step(step: dict[str, Any]) -> dict[str, Any]:
    thinking = step.get("thinking") or ""
    out = {"index": step["index"], "actor": step["actor"], "app": step.get("current_app"),
           "action": step.get("action_text"), "result": step.get("result")}  # fmt: skip
    if thinking:
        out["thinking"] = thinking if len(thinking) <= 300 else thinking[:297] + "…"
    return {k: v for k, v in out.items() if v is not None}

