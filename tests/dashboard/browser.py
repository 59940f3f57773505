"""A real headless Chromium for the dashboard's tests, driven by Selenium through Debian's chromedriver.

:func:`browser` starts one (in a fresh profile under the test's tmp dir) or skips the test when
``chromium`` or ``chromedriver`` is missing; under ``PHILIPJOSE_REQUIRE_ERLANG=1`` (CI, which installs
both) it fails instead (``tests.tools.require``). Selenium Manager is never asked for a driver: the
service is given chromedriver's path. Selenium blocks, so every call goes through a worker thread
(:meth:`Page.run`); waits poll the live page for a condition, with a generous timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio

from tests.tools import require

T = TypeVar("T")

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)
WAIT = 60.0  # seconds a condition on the page may take (the machine is loaded)


class Page:
    """One browser window (a Selenium driver)."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args)

    async def open(self, url: str) -> None:
        await self.run(self.driver.get, url)

    async def script(self, source: str) -> Any:
        return await self.run(self.driver.execute_script, source)

    async def text(self, css: str) -> str:
        """The text content of the first element matching ``css`` ("" if there is none)."""
        found = await self.script(
            f"const e = document.querySelector({css!r}); return e ? e.textContent : null;"
        )
        return "" if found is None else str(found)

    async def wait(self, what: str, condition: Callable[[], Any], timeout: float = WAIT) -> Any:
        """Poll ``condition`` (a blocking call on the driver, run in a thread) until it is truthy."""
        from selenium.webdriver.support.wait import WebDriverWait

        def until() -> Any:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda _: condition())

        try:
            return await self.run(until)
        except Exception as exc:  # selenium's TimeoutException: say what was awaited
            raise AssertionError(f"the page never showed {what} within {timeout:g} s") from exc

    def js(self, source: str) -> Any:
        """Run ``source`` in the page now (from a condition: already in a thread)."""
        return self.driver.execute_script(source)

    async def screenshot(self, path: Path) -> Path:
        await self.run(self.driver.save_screenshot, str(path))
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, f"{path} is not a PNG picture"
        return path


@asynccontextmanager
async def browser(tmp_path: Path) -> AsyncIterator[Page]:
    """A headless Chromium with a fresh profile, quit at the end."""
    chromium, chromedriver = require("chromium"), require("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    options.add_argument(f"--user-data-dir={profile}")
    service = Service(executable_path=chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    driver = await trio.to_thread.run_sync(lambda: webdriver.Chrome(service=service, options=options))
    try:
        yield Page(driver)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(driver.quit)
