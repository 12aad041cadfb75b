"""The page at / in headless Chromium: pick a photo, see it before and after, get a download link."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_testing import LiveServer, photo

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 60_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium")


@pytest.fixture
def page(server: LiveServer) -> Iterator[Any]:
    """The page, open in headless Chromium; fails the test if the page asks for anything from elsewhere."""
    from playwright.sync_api import sync_playwright

    elsewhere: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: elsewhere.append(request.url))
            page.goto(f"{server.url}/")
            yield page
        finally:
            browser.close()
    assert [url for url in elsewhere if not url.startswith((server.url, "blob:", "data:"))] == []


def test_page_shows_the_photo_before_and_after_and_offers_the_download(page: Any, tmp_path: Path) -> None:
    upload = tmp_path / "old-photo.png"
    photo(45, 30, "L").save(upload)
    page.set_input_files("#file", str(upload))
    page.wait_for_function(
        "() => { const img = document.getElementById('after'); return !img.hidden && img.naturalWidth > 0; }",
        timeout=WAIT_MS,
    )
    assert page.eval_on_selector("#after", "img => [img.naturalWidth, img.naturalHeight]") == [45, 30]
    assert page.eval_on_selector("#before", "img => img.naturalWidth") == 45
    download = page.locator("#download")
    assert download.get_attribute("download") == "old-photo-color.png"
    assert download.get_attribute("href").startswith("blob:")


def test_page_says_why_a_file_was_refused(page: Any, tmp_path: Path) -> None:
    upload = tmp_path / "notes.png"
    upload.write_text("not a picture")
    page.set_input_files("#file", str(upload))
    page.wait_for_selector("#status.error", timeout=WAIT_MS)
    assert "not_an_image" in page.text_content("#status")
    assert page.locator("#download").is_hidden()
