"""The dashboard's files as the API serves them, logging in and out in Chromium, and the events
WebSocket opened with the login cookie (Origin checked) — the API in process (``start_api``), no phones."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from orchestrator.api.deps import _check_same_origin
from orchestrator.errors import PermissionDenied
from tests.aio import run
from tests.orchestrator.conftest import Api
from tests.web.browser import S, Tab, chromium, expect

TIMEOUT_S = 15.0


def test_root_serves_the_dashboard_beside_the_api(api: Api) -> None:
    with httpx.Client(base_url=api.url, timeout=15) as http:
        index = http.get("/")
        assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="app/js/app.js">' in index.text
        assert "script-src 'self'" in index.headers["content-security-policy"]
        assert index.headers["cache-control"] == "no-cache"

        module = http.get("/app/js/app.js")
        assert module.status_code == 200
        assert module.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")
        assert module.headers["cache-control"] == "no-cache" and module.headers["etag"]
        assert http.get("/app/js/app.js", headers={"If-None-Match": module.headers["etag"]}).status_code == 304
        assert http.get("/app/css/app.css").headers["content-type"].startswith("text/css")

        # Only web/ is served: no climbing out, no directory listings, unknown files 404.
        for path in ("/app/../pyproject.toml", "/app/%2e%2e/pyproject.toml", "/app/", "/app/js/nope.js"):
            assert http.get(path).status_code == 404, path
        # The TypeScript client beside the pages (web/sdk-ts) is not served, however it is named.
        for path in ("/app/sdk-ts/package.json", "/app/sdk-ts/src/index.ts", "/app/sdk-ts",
                     "/app/js/../sdk-ts/openapi.json", "/app//sdk-ts/package.json", "/app/sdk-ts%2Fpackage.json"):
            assert raw_get(api.url, path) == (404, "not_found"), path

        # The API is untouched around it.
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/api/v1/tasks").status_code == 401
        assert http.get("/nope").json()["error"] == "not_found"
        assert http.post("/").status_code in (404, 405)
        assert "/" not in http.get("/openapi.json").json()["paths"]


def raw_get(base_url: str, path: str) -> tuple[int, str]:
    """GET ``path`` exactly as written (httpx folds ``..`` away before sending); the status and error code."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=15)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read()).get("error", "")
    finally:
        conn.close()


def test_log_in_with_a_key_then_log_out(api: Api, tmp_path: Path) -> None:
    caller = api.caller()

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, api.url, tmp_path)
            page = tab.page
            await tab.open_login(timeout_s=15)
            await expect(page.get_by_role("navigation", name="Main")).to_be_hidden()

            await page.get_by_label("API key").fill("pf_00000000_wrong")
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("alert")).to_contain_text("Not logged in", timeout=10 * S)

            await tab.login(caller.key)
            await expect(page.get_by_role("navigation", name="Main")).to_be_visible()
            cookies = {c["name"]: c for c in await page.context.cookies()}
            assert cookies["pf_session"]["httpOnly"] and not cookies["pf_csrf"]["httpOnly"]
            assert caller.key not in json.dumps(await page.evaluate("({...localStorage, ...sessionStorage})"))

            # A cookie-authenticated write from the page (the new-task form) carries the CSRF token.
            await page.get_by_label("Instruction", exact=True).fill("Open Settings")
            await page.get_by_role("button", name="Submit task").click()
            await expect(page.get_by_role("heading", name="Open Settings")).to_be_visible(timeout=10 * S)
            status = page.locator("#task-status [data-status]")
            await expect(status).to_have_attribute("data-status", "queued")

            # Cancel by keyboard: the dialog opens with focus on the safe choice, Escape closes it and
            # gives focus back; Shift+Tab reaches the destructive button.
            cancel = page.get_by_role("button", name="Cancel task…")
            await cancel.focus()
            await page.keyboard.press("Enter")
            dialog = page.locator("dialog[data-dialog=cancel]")
            await expect(dialog).to_be_visible()
            await expect(dialog.get_by_role("button", name="Keep it running")).to_be_focused()
            await page.keyboard.press("Escape")
            await expect(dialog).to_be_hidden()
            await expect(cancel).to_be_focused()
            await page.keyboard.press("Enter")
            await page.keyboard.press("Shift+Tab")
            await expect(dialog.get_by_role("button", name="Cancel task", exact=True)).to_be_focused()
            await page.keyboard.press("Enter")
            await expect(status).to_have_attribute("data-status", "cancelled", timeout=10 * S)
            await expect(cancel).to_be_hidden()

            await page.get_by_role("button", name="Log out").click()
            await tab.expect_login_page(timeout_s=10)
            await page.reload()
            await tab.expect_login_page(timeout_s=10)
            assert not any(c["name"] == "pf_session" for c in await page.context.cookies())
            tab.assert_no_errors()

    run(scenario())


def _login_cookie(api: Api, key: str) -> str:
    with httpx.Client(base_url=api.url, timeout=15) as http:
        answer = http.post("/api/v1/auth/login", json={"api_key": key})
        assert answer.status_code == 200, answer.text
        return answer.cookies["pf_session"]


def _ws_url(api: Api) -> str:
    return api.url.replace("http://", "ws://", 1) + "/api/v1/events"


def test_events_socket_takes_the_login_cookie_from_the_dashboards_origin(api: Api) -> None:
    caller = api.caller()
    cookie = _login_cookie(api, caller.key)
    headers = {"Cookie": f"pf_session={cookie}", "Origin": api.url}
    with connect(_ws_url(api), additional_headers=headers, open_timeout=TIMEOUT_S) as ws:
        assert json.loads(ws.recv(timeout=TIMEOUT_S))["type"] == "subscribed"
        answer = caller.http.post("/api/v1/tasks", json={"instruction": "open Settings"})
        event = json.loads(ws.recv(timeout=TIMEOUT_S))
        assert (event["type"], event["task_id"]) == ("task.created", answer.json()["id"])


@pytest.mark.parametrize(
    ("origin", "cookie", "code"),
    [
        ("http://evil.example", "good", 4403),  # another site's page: the browser sends our cookie, and its Origin
        (None, "good", 4403),  # browsers always send Origin; a cookie without one is not a browser's
        ("same", "v1.forged", 4401),
    ],
)
def test_events_socket_refuses_cross_origin_and_bad_cookies(api: Api, origin: str | None, cookie: str, code: int) -> None:
    caller = api.caller()
    value = _login_cookie(api, caller.key) if cookie == "good" else cookie
    headers = {"Cookie": f"pf_session={value}"}
    if origin is not None:
        headers["Origin"] = api.url if origin == "same" else origin
    with (
        connect(_ws_url(api), additional_headers=headers, open_timeout=TIMEOUT_S) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        while True:
            ws.recv(timeout=TIMEOUT_S)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code, closed.value


# The phone's input surface on its own: gestures.js bound to a video of a known size (a canvas
# stream, 360x800) shown in a 400x400 box, so object-fit: contain letterboxes it to 180x400 with
# 110 px bars left and right. Messages go to window.sent instead of a phone.
_HARNESS = """async () => {
  const { bindGestures } = await import("./app/js/gestures.js");
  const canvas = Object.assign(document.createElement("canvas"), { width: 360, height: 800 });
  const paint = canvas.getContext("2d");
  paint.fillStyle = "#2456d6";
  paint.fillRect(0, 0, 360, 800);
  const video = Object.assign(document.createElement("video"), { muted: true, srcObject: canvas.captureStream() });
  const surface = Object.assign(document.createElement("div"), { className: "screen", tabIndex: 0 });
  Object.assign(surface.style, { width: "400px", height: "400px", minHeight: "0" });
  surface.append(video);
  document.body.replaceChildren(surface);
  window.sent = [];
  bindGestures(surface, video, (message) => window.sent.push(message));
  await video.play();
  const box = video.getBoundingClientRect();
  return { left: box.left, top: box.top };
}"""


def test_gestures_map_to_control_messages_on_the_shown_picture(api: Api, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, api.url, tmp_path)
            page = tab.page
            await tab.open_login(timeout_s=15)
            origin = await page.evaluate(_HARNESS)  # replaces the (settled) login page
            await page.wait_for_function("() => document.querySelector('video').videoWidth === 360")

            def at(x: float, y: float) -> tuple[float, float]:  # a point of the picture (0–1) on the page
                return origin["left"] + 110 + x * 180, origin["top"] + y * 400

            async def sent(count: int) -> list[dict]:
                await page.wait_for_function(f"() => window.sent.length >= {count}", timeout=5 * S)
                return await page.evaluate("window.sent.splice(0)")

            # A click on the bar beside the picture is not on the phone; the next click is a tap.
            await page.mouse.click(origin["left"] + 50, origin["top"] + 200)
            await page.mouse.click(*at(0.5, 0.25))
            assert await sent(1) == [{"type": "tap", "x": 0.5, "y": 0.25}]

            await page.mouse.dblclick(*at(0.25, 0.75))
            assert await sent(1) == [{"type": "double_tap", "x": 0.25, "y": 0.75}]

            await page.mouse.move(*at(0.5, 0.8))
            await page.mouse.down()
            await page.mouse.move(*at(0.5, 0.2), steps=5)
            await page.mouse.up()
            [swipe] = await sent(1)
            assert (swipe["type"], swipe["x1"], swipe["y1"], swipe["x2"], swipe["y2"]) == ("swipe", 0.5, 0.8, 0.5, 0.2), swipe
            assert 50 <= swipe["duration_ms"] <= 3000

            await page.mouse.move(*at(0.1, 0.1))
            await page.mouse.down()
            await page.wait_for_timeout(700)  # the gesture itself: holding the button down (not a wait for a result)
            await page.mouse.up()
            [hold] = await sent(1)
            assert (hold["type"], hold["x"], hold["y"]) == ("long_press", 0.1, 0.1) and hold["duration_ms"] >= 500, hold

            # Keys while the surface has focus (the clicks above gave it focus).
            await page.keyboard.type("Hi")
            await page.keyboard.press("Enter")
            await page.keyboard.press("Backspace")
            await page.keyboard.press("PageDown")
            assert await sent(4) == [
                {"type": "text", "text": "Hi"},
                {"type": "key", "key": "enter"},
                {"type": "key", "key": "delete"},
                {"type": "swipe", "x1": 0.5, "y1": 0.75, "x2": 0.5, "y2": 0.3, "duration_ms": 300},
            ]
            tab.assert_no_errors()

    run(scenario())


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("https://fleet.example.com", "fleet.example.com", True),  # behind a TLS proxy: default ports
        ("https://fleet.example.com", "fleet.example.com:443", True),
        ("http://Fleet.Example.com:80", "fleet.example.com", True),
        ("http://fleet.example.com:8080", "fleet.example.com", False),
        ("https://fleet.example.com.evil.test", "fleet.example.com", False),
        ("null", "fleet.example.com", False),  # sandboxed frames, file:// pages
    ],
)
def test_origin_must_name_the_host(origin: str, host: str, same: bool) -> None:
    """The Origin rule on its own (no I/O to involve: a pure function of two headers)."""
    if same:
        _check_same_origin(origin, host)
    else:
        with pytest.raises(PermissionDenied):
            _check_same_origin(origin, host)


def test_tasks_list_follows_the_events_live(api: Api, tmp_path: Path) -> None:
    """Tasks created and cancelled elsewhere (here: over the API with the same tenant's key) appear
    and change status in the open list without a reload; the status filter narrows it."""
    caller = api.caller()

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, api.url, tmp_path)
            page = tab.page
            await tab.login(caller.key)
            await expect(page.get_by_text("Live", exact=True)).to_be_visible(timeout=10 * S)

            created = caller.http.post("/api/v1/tasks", json={"instruction": "Made elsewhere"}).json()
            row = page.locator(f"tr[data-task-id='{created['id']}']")
            await expect(row.locator("[data-status]")).to_have_attribute("data-status", "queued", timeout=10 * S)
            await expect(row).to_contain_text("Made elsewhere")
            assert caller.http.post(f"/api/v1/tasks/{created['id']}/cancel").status_code == 200
            await expect(row.locator("[data-status]")).to_have_attribute("data-status", "cancelled", timeout=10 * S)

            caller.http.post("/api/v1/tasks", json={"instruction": "Still queued"})
            await expect(page.locator("#task-table tbody tr")).to_have_count(2, timeout=10 * S)
            await page.get_by_label("Status").select_option("cancelled")
            await expect(page.get_by_role("heading", name="Cancelled tasks")).to_be_visible()
            await expect(page.locator("#task-table tbody tr")).to_have_count(1, timeout=10 * S)
            await expect(row).to_be_visible()
            assert page.url.endswith("#/tasks?status=cancelled")
            tab.assert_no_errors()

    run(scenario())


_WORDS = """async () => {
  const { describeAction, Answers } = await import("./app/js/answers.js");
  const { deviceName, endedSentence, sentences } = await import("./app/js/format.js");
  const tap = { name: "Tap", element: [499, 393], message: "Pay 1.00 EUR" };
  const answers = new Answers("t1");
  answers.track({ id: 1, type: "task.takeover_requested", payload: { message: "Log in, then hand the phone back." } });
  const banner = answers.banner("waiting_for_user").map((part) => (typeof part === "string" ? part : part.textContent)).join("");
  answers.destroy();
  return {
    tap: describeAction(tap),
    labelled: describeAction(tap, "Pay now"),
    own: describeAction({ ...tap, label: "Pay now" }),
    type: describeAction({ name: "Type", text: "hello" }),
    launch: describeAction({ name: "Launch", app: "Settings" }),
    swipe: describeAction({ name: "Swipe", start: [500, 800], end: [500, 200] }),
    banner,
    joined: sentences("Log in", "Use the phone."),
    ends: ["succeeded", "failed", "cancelled", "timed_out"].map(endedSentence),
    names: [
      deviceName({ id: "5d0e8f57-0a3c", provider: "sim", labels: { name: "Pixel in rack A" }, serial: "127.0.0.1:6520" }),
      deviceName({ id: "5d0e8f57-0a3c", provider: "sim", labels: {}, serial: "127.0.0.1:6520" }),
      deviceName({ id: "5d0e8f57-0a3c", provider: "sim", labels: {}, serial: null }),
    ],
  };
}"""


def test_words_for_people(api: Api, tmp_path: Path) -> None:
    """What the dashboard says to a person: actions, the takeover banner, how a task ended, phone names."""

    async def scenario() -> dict:
        async with chromium() as browser:
            tab = await Tab.open(browser, api.url, tmp_path)
            await tab.open_login(timeout_s=15)
            words = await tab.page.evaluate(_WORDS)
            tab.assert_no_errors()
            return words

    words = run(scenario())
    assert words["tap"] == "Tap at (499, 393) on the screen"
    assert words["labelled"] == words["own"] == "Tap “Pay now”"
    assert (words["type"], words["launch"]) == ("Type “hello”", "Open Settings")
    assert words["swipe"] == "Swipe from (500, 800) to (500, 200) on the screen"
    # The agent's sentence already ends with a full stop: none is added.
    assert words["banner"] == (
        "The agent asks you to take over: Log in, then hand the phone back. Use the phone, then press Hand back."
    )
    assert words["joined"] == "Log in. Use the phone."
    assert words["ends"] == [
        "The task succeeded", "The task failed", "The task was cancelled", "The task timed out"
    ]  # fmt: skip
    assert words["names"] == ["Pixel in rack A", "127.0.0.1:6520", "sim phone 5d0e8f57"]


def test_example_instructions_fill_the_new_task_form(api: Api, tmp_path: Path) -> None:
    """The form offers example instructions the reference model carries out; a click fills the field."""
    caller = api.caller()

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, api.url, tmp_path)
            page = tab.page
            await tab.login(caller.key)
            examples = page.get_by_role("group", name="Example instructions")
            await expect(examples.get_by_role("button")).to_have_count(6)
            example = "Open Settings and turn on airplane mode"
            await examples.get_by_role("button", name=example).click()
            field = page.locator("#instruction")
            await expect(field).to_have_value(example)
            await expect(field).to_be_focused()
            tab.assert_no_errors()

    run(scenario())
