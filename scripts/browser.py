"""Open a local HTML file in a real headless Chromium (Debian's, driven by Playwright).

Never ``playwright install``: that downloads a browser build from a CDN. ``make browser``
installs Debian's ``chromium`` package; ``CHROMIUM`` names another binary.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class NoBrowser(RuntimeError):
    pass


@dataclass
class PageVisit:
    """What a person's browser saw: console errors, uncaught errors, every URL it asked for."""

    title: str = ""
    text: str = ""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def chromium() -> str:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        raise NoBrowser(f"no Chromium at {CHROMIUM}: run `make browser` (Debian's chromium)")
    return CHROMIUM


def visit(
    path: Path,
    *,
    screenshot: Path | None = None,
    count: tuple[str, ...] = (),
    width: int = 1280,
) -> PageVisit:
    """Load ``path``, wait for it to settle, optionally screenshot the full page, and report.

    ``count`` are CSS selectors whose matches are counted (key content is there)."""
    from playwright.sync_api import sync_playwright

    seen = PageVisit()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on(
                "console",
                lambda message: (
                    seen.console_errors.append(message.text) if message.type == "error" else None
                ),
            )
            page.on("pageerror", lambda error: seen.page_errors.append(str(error)))
            page.on("request", lambda request: seen.requests.append(request.url))
            page.goto(path.resolve().as_uri(), wait_until="load")
            page.wait_for_load_state("networkidle")
            seen.title = page.title()
            seen.text = page.inner_text("body")
            seen.counts = {selector: page.locator(selector).count() for selector in count}
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return seen
