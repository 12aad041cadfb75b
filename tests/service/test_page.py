"""The page at / in headless Chromium: pick a photo, see it before and after, get a download link;
place colour hints by clicking on the photo, recolour and remove them, turn the saturation down."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
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


# The colour of the answer's pixel at (x, y), once the answer is shown: [r, g, b], or null before.
AFTER_PIXEL = """([x, y]) => {
  const img = document.getElementById('after');
  if (img.hidden || !img.complete || img.naturalWidth === 0) return null;
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  return Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3));
}"""
GREEN_THERE = f"(point) => {{ const p = ({AFTER_PIXEL})(point); return p && p[1] - Math.max(p[0], p[2]) > 80; }}"
RED_THERE = f"(point) => {{ const p = ({AFTER_PIXEL})(point); return p && p[0] - Math.max(p[1], p[2]) > 80; }}"
GRAY_THERE = f"(point) => {{ const p = ({AFTER_PIXEL})(point); return p && Math.max(...p) - Math.min(...p) <= 2; }}"


@pytest.fixture
def page(server: LiveServer) -> Iterator[Any]:
    """The page, served with a model that takes no hints."""
    with open_page(server) as page:
        yield page


@pytest.fixture
def hints_page(hints_server: LiveServer) -> Iterator[Any]:
    """The page, served with a model that takes hints."""
    with open_page(hints_server) as page:
        yield page


@contextmanager
def open_page(server: LiveServer) -> Iterator[Any]:
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


def choose_gray_photo(page: Any, tmp_path: Path) -> None:
    """Pick a plain gray 120x80 photo and wait for its answer."""
    upload = tmp_path / "gray.png"
    Image.new("L", (120, 80), 128).save(upload)
    page.set_input_files("#file", str(upload))
    page.wait_for_function(GRAY_THERE, arg=[60, 40], timeout=WAIT_MS)
    page.wait_for_selector("#hint-help", state="visible", timeout=WAIT_MS)


def click_photo_at(page: Any, x: int, y: int) -> None:
    """Click the shown photo where its pixel (x, y) is, whatever size it is shown at."""
    box = page.locator("#before").bounding_box()
    natural_width, natural_height = page.eval_on_selector("#before", "img => [img.naturalWidth, img.naturalHeight]")
    page.locator("#before").click(
        position={"x": (x + 0.5) * box["width"] / natural_width, "y": (y + 0.5) * box["height"] / natural_height}
    )


def test_a_click_on_the_photo_puts_the_picked_colour_there(hints_page: Any, tmp_path: Path) -> None:
    choose_gray_photo(hints_page, tmp_path)
    hints_page.locator("#hint-color").fill("#00c000")
    click_photo_at(hints_page, 30, 20)
    assert hints_page.locator("#hints li").all_text_contents() == ["at 30, 20Remove"]
    hints_page.wait_for_function(GREEN_THERE, arg=[30, 20], timeout=WAIT_MS)
    assert hints_page.evaluate(AFTER_PIXEL, [100, 70]) == [128, 128, 128]  # away from the hint: as predicted


def test_a_hint_can_be_recoloured_and_removed(hints_page: Any, tmp_path: Path) -> None:
    choose_gray_photo(hints_page, tmp_path)
    hints_page.locator("#hint-color").fill("#00c000")
    click_photo_at(hints_page, 30, 20)
    click_photo_at(hints_page, 90, 60)
    assert hints_page.locator("#hints li").count() == 2
    hints_page.wait_for_function(GREEN_THERE, arg=[90, 60], timeout=WAIT_MS)

    hints_page.get_by_label("Colour of hint 2").fill("#d00000")
    hints_page.wait_for_function(RED_THERE, arg=[90, 60], timeout=WAIT_MS)
    assert hints_page.evaluate(GREEN_THERE, [30, 20])  # the other hint keeps its colour

    hints_page.get_by_label("Remove hint 1").click()
    hints_page.wait_for_function(GRAY_THERE, arg=[30, 20], timeout=WAIT_MS)
    assert hints_page.locator("#hints li").all_text_contents() == ["at 90, 60Remove"]
    assert hints_page.evaluate(RED_THERE, [90, 60])


def test_the_saturation_slider_turns_the_colour_down(hints_page: Any, tmp_path: Path) -> None:
    choose_gray_photo(hints_page, tmp_path)
    hints_page.locator("#hint-color").fill("#00c000")
    click_photo_at(hints_page, 60, 40)
    hints_page.wait_for_function(GREEN_THERE, arg=[60, 40], timeout=WAIT_MS)
    hints_page.locator("#saturation").fill("0")
    hints_page.wait_for_function(GRAY_THERE, arg=[60, 40], timeout=WAIT_MS)
    assert hints_page.text_content("#saturation-value") == "0.00"


def test_a_model_without_hints_says_so_and_a_click_places_none(page: Any, tmp_path: Path) -> None:
    upload = tmp_path / "old-photo.png"
    photo(60, 40, "L").save(upload)
    page.set_input_files("#file", str(upload))
    page.wait_for_selector("#no-hints", state="visible", timeout=WAIT_MS)
    page.wait_for_function("() => document.getElementById('status').textContent === 'Done.'", timeout=WAIT_MS)
    click_photo_at(page, 30, 20)
    assert page.locator("#hints li").count() == 0
    assert page.text_content("#status") == "Done."


def test_a_photo_the_model_leaves_gray_is_shown_with_why_and_what_to_do(hints_page: Any, tmp_path: Path) -> None:
    choose_gray_photo(hints_page, tmp_path)  # its model colours only where hints are
    says_why = "() => document.getElementById('status').textContent.includes('left it gray')"
    hints_page.wait_for_function(says_why, timeout=WAIT_MS)
    assert "hints steer it" in hints_page.text_content("#status")
