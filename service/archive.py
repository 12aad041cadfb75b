"""The zip answer of ``/colorize/batch``: per upload its image or ``<name>.error.json``, plus a manifest."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from colorizer_service.colorizer import Colorized, FileError, Upload

MANIFEST_NAME = "manifest.json"
MAX_STEM_CHARS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def build_archive(uploads: Sequence[Upload], results: Sequence[Colorized | FileError], fmt: str) -> bytes:
    """A zip holding each result under a name derived from (never equal to) the client's file name."""
    entries: list[dict[str, Any]] = []
    taken: set[str] = set()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, (upload, result) in enumerate(zip(uploads, results, strict=True)):
            stem = _unique(_safe_stem(upload.filename, index), taken)
            entry: dict[str, Any] = {"upload": upload.filename}
            if isinstance(result, FileError):
                name = f"{stem}.error.json"
                archive.writestr(name, json.dumps({"error": result.kind, "detail": result.message}, indent=2))
                entry |= {"output": name, "ok": False, "error": result.kind, "detail": result.message}
            else:
                name = f"{stem}.{fmt}"
                # Images are compressed already; deflating them again only costs time.
                archive.writestr(name, result.content, compress_type=zipfile.ZIP_STORED)
                entry |= {"output": name, "ok": True, "model_version": result.model_version}
                if result.notes:
                    entry["notes"] = list(result.notes)
            entries.append(entry)
        archive.writestr(MANIFEST_NAME, json.dumps({"format": fmt, "files": entries}, indent=2))
    return buffer.getvalue()


def _safe_stem(filename: str | None, index: int) -> str:
    """The client's base name without folders or odd characters; ``image-<n>`` when nothing is left."""
    base = PurePosixPath((filename or "").replace("\\", "/")).name
    stem = _UNSAFE.sub("_", base.rsplit(".", 1)[0] if "." in base else base).strip("._")
    return stem[:MAX_STEM_CHARS] or f"image-{index + 1}"


def _unique(stem: str, taken: set[str]) -> str:
    candidate, number = stem, 2
    while candidate.lower() in taken:  # case-insensitive: the zip may be unpacked on macOS or Windows
        candidate, number = f"{stem}-{number}", number + 1
    taken.add(candidate.lower())
    return candidate
