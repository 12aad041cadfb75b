"""Saturation and render size (issue 10): how colourful the answer is, and at what size the model sees the photo."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image
from service_testing import MODEL_SIZE, encode, photo

from colorizer_service.settings import Settings

HINT = json.dumps([{"x": 64, "y": 64, "color": "#00c000"}])  # the middle of a 128x128 photo


def colorize(client: httpx.Client, image: Image.Image, *, hints: str | None = None, **params: object) -> httpx.Response:
    upload = {"file": ("photo.png", encode(image), "image/png")}
    return client.post("/colorize", files=upload, data={"hints": hints} if hints else None, params=params)


def rgb_of(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), np.int16)


def chroma(rgb: np.ndarray) -> np.ndarray:
    """How far each pixel is from gray: ``(H, W)``, max minus min channel."""
    return rgb.max(axis=-1) - rgb.min(axis=-1)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb.astype(np.uint8), "RGB").convert("L"), np.int16)


def assert_refused(response: httpx.Response, kind: str) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["error"] == kind


# saturation


def test_saturation_0_gives_a_gray_answer(client: httpx.Client) -> None:
    assert chroma(rgb_of(colorize(client, photo(48, 32, "L"), saturation=0))).max() <= 1


def test_saturation_2_is_more_colourful_than_1_and_keeps_the_luminance(client: httpx.Client) -> None:
    original = photo(48, 32, "L")
    as_predicted = rgb_of(colorize(client, original))
    vivid = rgb_of(colorize(client, original, saturation=2))
    assert chroma(vivid).mean() > 1.5 * chroma(as_predicted).mean()
    assert np.abs(luminance(vivid) - np.asarray(original, np.int16)).max() <= 1


def test_saturation_1_is_the_default(client: httpx.Client) -> None:
    original = photo(48, 32, "L")
    assert np.array_equal(rgb_of(colorize(client, original, saturation=1)), rgb_of(colorize(client, original)))


@pytest.mark.parametrize("saturation", ["-0.1", "2.01", "vivid", "nan"])
def test_saturation_outside_0_to_2_is_refused(client: httpx.Client, saturation: str) -> None:
    assert_refused(colorize(client, photo(), saturation=saturation), "invalid_request")


# render_size


def test_a_larger_render_size_paints_a_hint_over_less_of_the_photo(hints_client: httpx.Client) -> None:
    gray = Image.new("L", (128, 128), 128)
    answers = [rgb_of(colorize(hints_client, gray, hints=HINT, render_size=size)) for size in (32, 64, 128)]
    areas = [(chroma(rgb) > 30).sum() for rgb in answers]
    assert areas[0] > areas[1] > areas[2] > 0


def test_render_size_is_rounded_to_the_models_size_multiple(hints_client: httpx.Client) -> None:
    gray = Image.new("L", (128, 128), 128)  # the tiny hints model's size_multiple is 8

    def answer(size: int) -> np.ndarray:
        return rgb_of(colorize(hints_client, gray, hints=HINT, render_size=size))

    assert np.array_equal(answer(61), answer(64))
    assert np.array_equal(answer(67), answer(64))
    assert not np.array_equal(answer(56), answer(64))


def test_photos_at_different_render_sizes_are_answered_together(hints_client: httpx.Client) -> None:
    gray = Image.new("L", (128, 128), 128)
    sizes = [32, 64, 32, 64, 96, 32]
    alone = {size: rgb_of(colorize(hints_client, gray, hints=HINT, render_size=size)) for size in set(sizes)}
    with ThreadPoolExecutor(len(sizes)) as pool:
        together = list(pool.map(lambda size: colorize(hints_client, gray, hints=HINT, render_size=size), sizes))
    assert all(np.array_equal(rgb_of(response), alone[size]) for response, size in zip(together, sizes))


@pytest.mark.parametrize("render_size", [0, -64, 31, Settings().max_render_size + 1, 10**12])
def test_render_size_outside_its_bounds_is_refused(client: httpx.Client, render_size: int) -> None:
    assert_refused(colorize(client, photo(), render_size=render_size), "render_size_out_of_range")


def test_render_size_that_is_not_a_number_is_refused(client: httpx.Client) -> None:
    assert_refused(colorize(client, photo(), render_size="large"), "invalid_request")


def test_a_model_that_sees_only_its_native_size_takes_no_other_render_size(start_server: Callable) -> None:
    fixed = {"accepts_other_sizes": False, "size_multiple": 1}
    with start_server(model_options=fixed) as live, live.client() as client:
        assert colorize(client, photo()).status_code == 200
        assert colorize(client, photo(), render_size=MODEL_SIZE).status_code == 200
        assert_refused(colorize(client, photo(), render_size=MODEL_SIZE + 8), "render_size_unsupported")


# /colorize/batch takes both (hints are per photo: not there)


def test_batch_takes_saturation_and_render_size(client: httpx.Client) -> None:
    files = [("files", (f"{name}.png", encode(photo(40, 30, "L")), "image/png")) for name in ("a", "b")]
    response = client.post("/colorize/batch", files=files, params={"saturation": 0, "render_size": 64})
    assert response.status_code == 200, response.text
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    for name in ("a.png", "b.png"):
        assert chroma(np.asarray(Image.open(archive.open(name)).convert("RGB"), np.int16)).max() <= 1


def test_batch_with_a_render_size_out_of_range_is_refused_as_a_whole(client: httpx.Client) -> None:
    files = [("files", ("a.png", encode(photo()), "image/png"))]
    assert_refused(client.post("/colorize/batch", files=files, params={"render_size": 8}), "render_size_out_of_range")
