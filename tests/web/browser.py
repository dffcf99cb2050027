"""Headless Chromium through Playwright's async API, for the dashboard's tests.

Async, not Playwright's sync API: the sync API keeps an event loop running in the test's thread,
so the fleet's helpers (``tests.aio.run``) could not run beside it. A test is one coroutine
(``tests.aio.run(scenario())``) and waits only with Playwright's own waiting (``expect``,
``wait_for_function``) or ``tests.aio.until``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.orchestrator.live.test_browser import CHROMIUM, CHROMIUM_ARGS

__all__ = ["CHROMIUM", "Tab", "chromium", "expect"]

S = 1000  # Playwright's timeouts are in milliseconds

# The first viewer of the page (phone.js puts each live view in window.pf.viewers) and its stats.
_STATS = """() => {
  const view = [...(window.pf?.viewers ?? [])][0];
  return view ? view.snapshot() : null;
}"""


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Tab:
    """One browser context (its own cookies) and page, with the page's uncaught errors collected."""

    page: Page
    base_url: str
    artifacts: Path
    errors: list[str] = field(default_factory=list)

    @classmethod
    async def open(cls, browser: Browser, base_url: str, artifacts: Path, *, width: int = 1280, height: int = 900) -> Tab:
        context = await browser.new_context(viewport={"width": width, "height": height})
        page = await context.new_page()
        tab = cls(page, base_url, artifacts)
        page.on("pageerror", lambda error: tab.errors.append(f"pageerror: {error}"))
        page.on("console", lambda m: tab.errors.append(f"console: {m.text}") if m.type == "error" and "Uncaught" in m.text else None)
        return tab

    async def goto(self, hash_: str = "") -> None:
        await self.page.goto(f"{self.base_url}/{hash_}")

    async def expect_login_page(self, timeout_s: float = 30) -> None:
        """The login page is shown (within ``timeout_s``)."""
        await expect(self.page.get_by_role("heading", name="Log in to PhoneFleet")).to_be_visible(timeout=timeout_s * S)

    async def open_login(self, hash_: str = "", timeout_s: float = 30) -> None:
        """Go to the dashboard (``hash_``) without a login: the login page, within ``timeout_s``."""
        await self.goto(hash_)
        await self.expect_login_page(timeout_s)

    async def login(self, key: str) -> None:
        """The login page, the key, and the tasks page it leads to."""
        await self.open_login("#/tasks")
        await self.page.get_by_label("API key").fill(key)
        await self.page.get_by_role("button", name="Log in").click()
        await expect(self.page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible(timeout=15 * S)

    async def shot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        print(f"page screenshot: {path}")
        return path

    async def video_stats(self) -> dict[str, Any] | None:
        return await self.page.evaluate(_STATS)

    async def wait_video_playing(self, timeout_s: float = 60) -> dict[str, Any]:
        """Frames decoded (WebRTC stats), then the video element's clock moving on. (Predicates are
        synchronous: ``wait_for_function`` takes a returned Promise as truthy, it does not await it.)"""
        await self.page.wait_for_function(
            f"() => {{ const s = ({_STATS})(); return s !== null && s.framesDecoded > 0 && s.width > 0; }}",
            polling=200, timeout=timeout_s * S,
        )
        first = await self.video_stats()
        assert first is not None, await self.phone_text()
        await self.page.wait_for_function(
            f"() => {{ const s = ({_STATS})(); return s !== null && s.currentTime > {first['currentTime'] + 0.5}; }}",
            polling=200, timeout=15 * S,
        )
        stats = await self.video_stats()
        assert stats is not None, await self.phone_text()
        return stats

    async def phone_text(self) -> str:
        """What the phone panel says (its overlay and status line), for assertion messages."""
        return await self.page.evaluate(
            "() => [...document.querySelectorAll('.phone .overlay, .phone .phone-status')].map((e) => e.textContent).join(' | ')"
        )

    def assert_no_errors(self) -> None:
        assert not self.errors, f"the page had errors: {self.errors}"
