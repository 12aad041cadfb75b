"""Each kind of bad upload gets a 4xx with a JSON body that says what was wrong, and the service goes on."""

from __future__ import annotations

import http.client
import json
import socket
import struct
import zlib
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from service_testing import MAX_PIXELS, LiveServer, encode, photo

BOUNDARY = "colorizer-test-boundary"


def post_file(client: httpx.Client, data: bytes, name: str = "upload.png") -> httpx.Response:
    return client.post("/colorize", files={"file": (name, data, "application/octet-stream")})


def assert_error(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == kind
    assert body["detail"]


def assert_still_serving(client: httpx.Client) -> None:
    assert post_file(client, encode(photo())).status_code == 200


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels but holds almost no data: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    pixels = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.mark.parametrize("files", [None, {"picture": ("p.png", b"...", "image/png")}], ids=["no-body", "wrong-field"])
def test_missing_file_field_is_422(client: httpx.Client, files: dict | None) -> None:
    assert_error(client.post("/colorize", files=files), 422, "missing_field")
    assert_still_serving(client)


def test_empty_file_is_400(client: httpx.Client) -> None:
    assert_error(post_file(client, b""), 400, "empty_file")
    assert_still_serving(client)


def test_file_that_is_not_an_image_is_415(client: httpx.Client) -> None:
    assert_error(post_file(client, b"Dear service, please colorize me.", "letter.txt"), 415, "not_an_image")
    assert_still_serving(client)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_422(client: httpx.Client, fmt: str) -> None:
    whole = encode(photo(64, 48), fmt)
    assert_error(post_file(client, whole[: len(whole) // 2]), 422, "corrupt_image")
    assert_still_serving(client)


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("icon.ico", encode(photo(32, 32), "ICO"), "unsupported_format"),
        (
            "page.pdf",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
            "not_an_image",
        ),
        (
            "drawing.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>',
            "not_an_image",
        ),
    ],
)
def test_unsupported_format_is_415(client: httpx.Client, name: str, data: bytes, kind: str) -> None:
    assert_error(post_file(client, data, name), 415, kind)
    assert_still_serving(client)


def test_image_with_too_many_pixels_is_413(client: httpx.Client) -> None:
    big = Image.new("L", (MAX_PIXELS // 400 + 1, 400))  # one column over the limit; compresses to little
    assert_error(post_file(client, encode(big)), 413, "too_many_pixels")
    assert_still_serving(client)


def test_decompression_bomb_is_413(client: httpx.Client) -> None:
    assert_error(post_file(client, png_header_only(100_000, 100_000), "bomb.png"), 413, "too_many_pixels")
    assert_still_serving(client)


def raw_post(server: LiveServer, headers: dict[str, str], body_parts: list[bytes]) -> tuple[int, dict]:
    """Send a request by hand (so it can stop short of the body it declares); the answer's status and JSON."""
    address = urlsplit(server.url)
    head = "POST /colorize HTTP/1.1\r\nHost: test\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n")
        for part in body_parts:
            sock.sendall(part)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


def multipart_start(name: str = "big.png") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()


def test_body_declared_over_the_limit_is_413_before_it_is_sent(server: LiveServer, client: httpx.Client) -> None:
    limit = server.app.state.settings.max_upload_bytes
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Content-Length": str(10 * limit)}
    status, body = raw_post(server, headers, [multipart_start()])  # only the first bytes of the body
    assert (status, body["error"]) == (413, "upload_too_large")
    assert_still_serving(client)


def test_streamed_body_over_the_limit_is_413_while_it_streams(server: LiveServer, client: httpx.Client) -> None:
    limit = server.app.state.settings.max_upload_bytes
    piece = b"\0" * (64 * 1024)
    parts = [multipart_start()] + [piece] * (limit // len(piece) + 2)  # past the limit, never finished
    chunked = [f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in parts]
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Transfer-Encoding": "chunked"}
    status, body = raw_post(server, headers, chunked)
    assert (status, body["error"]) == (413, "upload_too_large")
    assert_still_serving(client)


def test_body_just_over_the_limit_is_413_for_an_ordinary_client(server: LiveServer, client: httpx.Client) -> None:
    limit = server.app.state.settings.max_upload_bytes
    assert_error(post_file(client, b"\0" * (limit + 1)), 413, "upload_too_large")
    assert_still_serving(client)


def test_unknown_output_format_is_422(client: httpx.Client) -> None:
    upload = {"file": ("p.png", encode(photo()), "image/png")}
    assert_error(client.post("/colorize", params={"format": "gif"}, files=upload), 422, "invalid_request")
