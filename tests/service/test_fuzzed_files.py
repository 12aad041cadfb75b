"""Real photos with corrupted EXIF blocks or animation frames never get a 500, alone or in a batch."""

from __future__ import annotations

import io
import json
import zipfile

import httpx
import pytest
from fuzzed_files import animation_mutants, exif_mutants
from service_testing import MAX_BATCH_FILES

EXIF_MUTANTS = 60
MUTANTS_PER_ANIMATION = 20
SEED = 11


def assert_answered_without_a_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert response.json()["error"] and response.json()["detail"]


def chunks(items: list[bytes], size: int) -> list[list[bytes]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


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
    for batch in chunks(FUZZED[kind], MAX_BATCH_FILES):
        response = client.post("/colorize/batch", files=[("files", (f"{i}.bin", data, "image/jpeg")) for i, data in enumerate(batch)])
        assert response.status_code == 200, response.text
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            entries = json.loads(archive.read("manifest.json"))["files"]
        assert len(entries) == len(batch)
        assert all(entry["ok"] or entry["error"] != "internal_error" for entry in entries)
