"""POST /colorize: the answer keeps the upload's size and luminance, in the asked-for format."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from service_testing import LiveServer, encode, metric_samples, photo

from colorizer_service.api.routes.colorize import NOTE_HEADER, VERSION_HEADER


def post_image(client: httpx.Client, data: bytes, *, name: str = "photo.png", **params: str) -> httpx.Response:
    return client.post("/colorize", files={"file": (name, data, "application/octet-stream")}, params=params)


def luminance(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.int16)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_colorized_upload_keeps_the_input_luminance(client: httpx.Client, mode: str) -> None:
    original = photo(64, 48, mode)
    response = post_image(client, encode(original))
    assert response.status_code == 200, response.text
    result = Image.open(io.BytesIO(response.content))
    assert np.abs(luminance(result) - luminance(original)).max() <= 1


def test_colorized_upload_is_in_colour(client: httpx.Client) -> None:
    response = post_image(client, encode(photo(40, 30, "L")))
    red, _, blue = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), np.int16).transpose(2, 0, 1)
    assert (red - blue).mean() > 5  # the served model tints warm: red over blue


@pytest.mark.parametrize("size", [(37, 23), (1, 1), (301, 7)])
def test_answer_has_the_upload_pixel_size(client: httpx.Client, size: tuple[int, int]) -> None:
    response = post_image(client, encode(photo(*size)))
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == size


def test_exif_rotated_jpeg_is_answered_upright(client: httpx.Client) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned; show rotated 90 degrees clockwise
    response = post_image(client, encode(photo(40, 24), "JPEG", exif=exif.tobytes()), name="turned.jpg")
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (24, 40)


@pytest.mark.parametrize(
    ("fmt", "media_type", "pil_format"),
    [
        ("png", "image/png", "PNG"),
        ("jpeg", "image/jpeg", "JPEG"),
        ("webp", "image/webp", "WEBP"),
    ],
)
def test_answer_is_encoded_as_asked(client: httpx.Client, fmt: str, media_type: str, pil_format: str) -> None:
    response = post_image(client, encode(photo()), format=fmt)
    assert response.headers["content-type"] == media_type
    assert Image.open(io.BytesIO(response.content)).format == pil_format


def test_answer_names_the_model_version(client: httpx.Client) -> None:
    assert post_image(client, encode(photo())).headers[VERSION_HEADER] == "1"


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("JPEG", {}),
        ("WEBP", {"lossless": True}),
        ("BMP", {}),
        ("TIFF", {}),
    ],
)
def test_every_accepted_input_format_is_colorized(client: httpx.Client, fmt: str, options: dict) -> None:
    response = post_image(client, encode(photo(33, 21), fmt, **options), name=f"photo.{fmt.lower()}")
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (33, 21)


def test_a_burst_of_requests_is_served_in_shared_batches(server: LiveServer, client: httpx.Client) -> None:
    before = metric_samples(client)
    uploads = [encode(photo(30 + index, 20)) for index in range(16)]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60.0) as clients:
            return await asyncio.gather(
                *(clients.post("/colorize", files={"file": ("p.png", data, "image/png")}) for data in uploads)
            )

    responses = asyncio.run(burst())
    assert [response.status_code for response in responses] == [200] * len(uploads)
    after = metric_samples(client)

    def shared_batches(samples: dict) -> float:
        total = samples[("colorizer_batch_size_count", frozenset())]
        single = samples[("colorizer_batch_size_bucket", frozenset({("le", "1.0")}))]
        return total - single

    assert shared_batches(after) > shared_batches(before)



def test_png_compress_level_changes_the_answer_size_not_its_pixels(
    client: httpx.Client, start_server: Callable[..., Any]
) -> None:
    upload = encode(photo(64, 48, "L"))
    fast = post_image(client, upload)  # the default level, 1
    with start_server(png_compress_level=0, codec_threads=1) as live, live.client() as other:
        stored = post_image(other, upload)
    assert [fast.status_code, stored.status_code] == [200, 200]
    assert len(stored.content) > len(fast.content)
    assert np.array_equal(*(np.asarray(Image.open(io.BytesIO(answer.content))) for answer in (stored, fast)))

def test_animated_image_gives_its_first_frame_and_says_so(client: httpx.Client) -> None:
    frames = [Image.new("L", (20, 10), 0), Image.new("L", (20, 10), 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    response = post_image(client, buffer.getvalue(), name="blink.gif")
    assert response.status_code == 200, response.text
    assert "first frame" in response.headers[NOTE_HEADER]
    assert luminance(Image.open(io.BytesIO(response.content))).max() <= 1  # the black first frame


def test_a_photo_the_model_leaves_gray_says_so_and_that_hints_steer_it(
    client: httpx.Client, hints_client: httpx.Client
) -> None:
    upload = encode(photo(40, 30, "L"))
    left_gray = post_image(hints_client, upload)  # its model colours only under hints
    coloured = post_image(client, upload)  # a warm tint everywhere
    assert [left_gray.status_code, coloured.status_code] == [200, 200]
    assert "left it gray" in left_gray.headers[NOTE_HEADER] and "hints" in left_gray.headers[NOTE_HEADER]
    assert NOTE_HEADER not in coloured.headers


def test_a_cameras_multi_picture_jpeg_is_one_photo_not_an_animation(client: httpx.Client) -> None:
    buffer = io.BytesIO()
    photo(40, 30, "RGB").save(buffer, "MPO", save_all=True, append_images=[photo(20, 15, "RGB")])
    assert Image.open(io.BytesIO(buffer.getvalue())).format == "MPO"
    response = post_image(client, buffer.getvalue(), name="camera.jpg")
    assert response.status_code == 200, response.text
    assert NOTE_HEADER not in response.headers
    assert Image.open(io.BytesIO(response.content)).size == (40, 30)


def rgba() -> Image.Image:
    image = photo(30, 20, "RGBA")
    image.putalpha(128)
    return image


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("cmyk.jpg", lambda: encode(photo(30, 20, "CMYK"), "JPEG")),
        ("sixteen-bit.png", lambda: encode(photo(30, 20, "L").convert("I;16"), "PNG")),
        ("palette.png", lambda: encode(photo(30, 20, "P"), "PNG")),
        ("alpha.png", lambda: encode(rgba(), "PNG")),
        ("gray-alpha.png", lambda: encode(photo(30, 20, "LA"), "PNG")),
    ],
)
def test_unusual_modes_are_converted_not_refused(client: httpx.Client, name: str, make) -> None:
    response = post_image(client, make(), name=name)
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (30, 20)
