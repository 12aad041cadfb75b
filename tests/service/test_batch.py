"""POST /colorize/batch: a zip with one result per upload; a bad upload gets an error file, the rest succeed."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable

import httpx
from PIL import Image
from service_testing import MAX_BATCH_FILES, encode, photo


def post_batch(client: httpx.Client, uploads: list[tuple[str, bytes]], **params: str) -> httpx.Response:
    files = [("files", (name, data, "application/octet-stream")) for name, data in uploads]
    return client.post("/colorize/batch", files=files, params=params)


def unzip(response: httpx.Response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.content))


def test_each_upload_gets_its_own_result_and_a_bad_one_an_error_file(client: httpx.Client) -> None:
    archive = unzip(
        post_batch(
            client,
            [
                ("first.png", encode(photo(37, 23))),
                ("broken.jpg", b"not a photo at all"),
                ("second.jpg", encode(photo(20, 50), "JPEG")),
            ],
        )
    )
    assert sorted(archive.namelist()) == ["broken.error.json", "first.png", "manifest.json", "second.png"]
    assert Image.open(archive.open("first.png")).size == (37, 23)
    assert Image.open(archive.open("second.png")).size == (20, 50)
    assert json.loads(archive.read("broken.error.json"))["error"] == "not_an_image"

    manifest = json.loads(archive.read("manifest.json"))
    assert [(entry["upload"], entry["output"], entry["ok"]) for entry in manifest["files"]] == [
        ("first.png", "first.png", True),
        ("broken.jpg", "broken.error.json", False),
        ("second.jpg", "second.png", True),
    ]


def test_zip_names_never_follow_the_client_out_of_the_archive(client: httpx.Client) -> None:
    archive = unzip(
        post_batch(
            client,
            [
                ("../../etc/evil.png", encode(photo())),
                ("C:\\Users\\me\\evil.png", encode(photo())),
                ("&&&.png", encode(photo())),
            ],
        )
    )
    names = [name for name in archive.namelist() if name != "manifest.json"]
    assert names == ["evil.png", "evil-2.png", "image-3.png"]


def test_batch_answers_in_the_asked_format(client: httpx.Client) -> None:
    archive = unzip(post_batch(client, [("a.png", encode(photo()))], format="jpeg"))
    assert Image.open(archive.open("a.jpeg")).format == "JPEG"


def test_batch_without_files_is_422(client: httpx.Client) -> None:
    response = client.post("/colorize/batch")
    assert (response.status_code, response.json()["error"]) == (422, "missing_field")


def test_batch_with_too_many_files_is_413(client: httpx.Client) -> None:
    response = post_batch(client, [(f"{n}.png", encode(photo(8, 8))) for n in range(MAX_BATCH_FILES + 1)])
    assert (response.status_code, response.json()["error"]) == (413, "too_many_files")


def test_any_failure_of_one_file_is_its_error_file_and_the_rest_come_back(start_server: Callable) -> None:
    with start_server() as live, live.client() as client:
        colorizer = live.app.state.colorizer
        finish = colorizer._finish

        def fails_on_tall_photos(gray: Image.Image, *rest: object) -> bytes:
            if gray.height > gray.width:
                raise RuntimeError("an encoder bug that only tall photos meet")
            return finish(gray, *rest)

        colorizer._finish = fails_on_tall_photos  # this server's only: a failure no check foresaw
        archive = unzip(post_batch(client, [("wide.png", encode(photo(40, 20))), ("tall.png", encode(photo(20, 40)))]))
        assert json.loads(archive.read("tall.error.json"))["error"] == "internal_error"
        assert Image.open(archive.open("wide.png")).size == (40, 20)
