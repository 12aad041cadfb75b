"""Step 1 of the seed: scrape a folder of photos per category with bing-image-downloader.

The downloader is the optional extra ``scrape`` and is imported only when scraping, so the rest of
the trainer works without it. It writes ``OUT/<category>/Image_<n>.<ext>``: the layout
``dataset build`` reads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from tqdm import tqdm

INSTALL_HINT = "pip install 'colorizer[scrape]'"
# Characters bing-image-downloader would replace in the folder name; refused so the folder is the category.
UNSAFE_FOLDER_CHARACTERS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


class ScrapeError(Exception):
    """Scraping could not run or failed; the message is one line for the user."""


@dataclass(frozen=True)
class ScrapeOptions:
    """The seed's call: ``downloader.download(query, limit=100, adult_filter_off=True, ...)``."""

    limit: int = 100  # images per category
    timeout: int = 60  # seconds per connection
    adult_filter_off: bool = True
    force_replace: bool = False  # True would delete what a category folder already holds

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"limit must be at least 1. Received: limit={self.limit}")
        if self.timeout < 1:
            raise ValueError(f"timeout must be at least 1 second. Received: timeout={self.timeout}")


def check_category(category: str) -> None:
    """Refuse a category that would not be one plain folder name."""
    if not category.strip() or UNSAFE_FOLDER_CHARACTERS.search(category) or category != category.strip(". "):
        raise ValueError(f"a category must be a plain folder name. Received: {category!r}")


def load_downloader() -> ModuleType:
    """bing-image-downloader's ``downloader`` module, or a ``ScrapeError`` saying how to install it."""
    try:
        from bing_image_downloader import downloader
    except ImportError:
        raise ScrapeError(f"scraping needs bing-image-downloader, the `scrape` extra: {INSTALL_HINT}") from None
    return downloader


def scrape_category(category: str, out: Path, options: ScrapeOptions = ScrapeOptions()) -> int:
    """Download up to ``options.limit`` images into ``out/<category>/``; returns how many files it holds."""
    check_category(category)
    downloader = load_downloader()
    folder = out / category
    existed = folder.exists()
    try:
        downloader.download(
            category,
            limit=options.limit,
            output_dir=str(out),
            adult_filter_off=options.adult_filter_off,
            force_replace=options.force_replace,
            timeout=options.timeout,
            verbose=False,
        )
    except OSError as error:  # urllib's URLError, timeouts, DNS failures
        if not existed and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # an empty category folder would only trouble `dataset build`
        reason = getattr(error, "reason", error)
        raise ScrapeError(
            f"could not download {category!r} from Bing (is there network access?): {reason}"
        ) from None
    return sum(path.is_file() for path in folder.iterdir()) if folder.is_dir() else 0


def scrape(
    categories: Sequence[str], out: Path, options: ScrapeOptions = ScrapeOptions(), *, progress: bool = True
) -> dict[str, int]:
    """Scrape each category in turn; returns the number of files in each category folder."""
    for category in categories:
        check_category(category)
    load_downloader()  # fail before creating anything when the extra is missing
    out.mkdir(parents=True, exist_ok=True)
    return {
        category: scrape_category(category, out, options)
        for category in tqdm(categories, desc="scrape", unit="category", disable=not progress)
    }
