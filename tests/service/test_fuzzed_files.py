"""Real photos with corrupted EXIF blocks or animation frames never get a 500, alone or in a batch."""

from __future__ import annotations

import io
import json
import zipfile

import httpx
import pytest
from fuzzed_files import animation_mutants, exif_mutants
from service_testing import MAX_BATCH_FILES, MAX_UPLOAD_MB

EXIF_MUTANTS = 60
MUTANTS_PER_ANIMATION = 20
SEED = 11


def assert_answered_without_a_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert response.json()["error"] and response.json()["detail"]


BATCH_BODY_BYTES = int(MAX_UPLOAD_MB * 2**20 * 0.9)  # room for the multipart framing


def batches(items: list[bytes]) -> list[list[bytes]]:
    """``items`` in order, in batches the test server takes: few enough files, a small enough body."""
    grouped: list[list[bytes]] = [[]]
    for data in items:
        if len(grouped[-1]) == MAX_BATCH_FILES or sum(map(len, grouped[-1])) + len(data) > BATCH_BODY_BYTES:
            grouped.append([])
        grouped[-1].append(data)
    return [batch for batch in grouped if batch]


FUZZED = {
    "exif": exif_mutants(EXIF_MUTANTS, SEED),
    "animation": [data for _, data in animation_mutants(MUTANTS_PER_ANIMATION, SEED)],
}


@pytest.mark.parametrize("kind", FUZZED)
def test_each_fuzzed_file_gets_an_image_or_a_4xx(client: httpx.Client, kind: str) -> None:
    for data in FUZZED[kind]:
        assert_answered_without_a_server_error(client.post("/colorize", files={"file": ("f.bin", data, "image/jpeg")}))
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("kind", FUZZED)
def test_each_fuzzed_file_in_a_batch_gets_its_image_or_its_error(client: httpx.Client, kind: str) -> None:
    for batch in batches(FUZZED[kind]):
        response = client.post("/colorize/batch", files=[("files", (f"{i}.bin", data, "image/jpeg")) for i, data in enumerate(batch)])
        assert response.status_code == 200, response.text
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            entries = json.loads(archive.read("manifest.json"))["files"]
        assert len(entries) == len(batch)
        assert all(entry["ok"] or entry["error"] != "internal_error" for entry in entries)
