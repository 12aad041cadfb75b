"""Colour hints (issue 10): a user puts colours at points of the photo, and the model follows them."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image
from service_testing import encode

from colorizer_core import contract
from colorizer_core.hints import MAX_HINTS, Hint
from colorizer_core.imaging import hint_map

GREEN, RED, BLUE = "#00c000", "#d00000", "#0000d0"


def gray_photo(width: int = 64, height: int = 48) -> Image.Image:
    return Image.new("L", (width, height), 128)


def post_with_hints(client: httpx.Client, image: Image.Image, hints: object, **params: str) -> httpx.Response:
    field = hints if isinstance(hints, str) else json.dumps(hints)
    upload = {"file": ("photo.png", encode(image), "image/png")}
    return client.post("/colorize", files=upload, data={"hints": field}, params=params)


def rgb_of(response: httpx.Response) -> np.ndarray:
    """The answer's pixels, ``(H, W, 3)`` int16."""
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), np.int16)


def coloured(rgb: np.ndarray, threshold: int = 30) -> np.ndarray:
    """Where the picture is clearly not gray: ``(H, W)`` bool."""
    return (rgb.max(axis=-1) - rgb.min(axis=-1)) > threshold


def centre_of(mask: np.ndarray) -> tuple[float, float]:
    rows, columns = np.nonzero(mask)
    return float(columns.mean()), float(rows.mean())


# hint_map: where a hint lands in the model's input


def test_a_hint_is_painted_as_a_square_of_hint_patch_pixels_around_its_point_at_the_model_size() -> None:
    painted = hint_map([Hint(x=64, y=32, color="#ff8000")], (128, 64), 32)  # the middle of the photo
    assert painted.shape == (32, 32, contract.HINT_CHANNELS)
    rows, columns = np.nonzero(painted[..., 3])
    half = contract.HINT_PATCH // 2
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (16 - half, 16 + half, 16 - half, 16 + half)
    assert painted[..., 3].sum() == contract.HINT_PATCH**2
    assert painted[16, 16].tolist() == pytest.approx([1.0, 128 / 255, 0.0, 1.0])
    assert not painted[0, 0].any()  # no hint: colour and mask are zero


def test_a_hint_at_the_border_is_cut_by_it() -> None:
    half = contract.HINT_PATCH // 2
    assert hint_map([Hint(x=0, y=0, color="#ffffff")], (64, 64), 32)[..., 3].sum() == (half + 1) ** 2


def test_a_hint_in_the_last_pixel_of_the_photo_lands_in_the_last_pixel_of_the_model_input() -> None:
    assert hint_map([Hint(x=63.9, y=47.9, color="#ffffff")], (64, 48), 32)[31, 31, 3] == 1.0


def test_a_later_hint_paints_over_an_earlier_one() -> None:
    painted = hint_map([Hint(x=10, y=10, color="#ff0000"), Hint(x=10, y=10, color="#0000ff")], (20, 20), 20)
    assert painted[10, 10].tolist() == [0.0, 0.0, 1.0, 1.0]


# POST /colorize with hints, on a model that takes them


def test_a_hint_colours_the_photo_around_its_point_and_leaves_the_rest_as_predicted(hints_client: httpx.Client) -> None:
    rgb = rgb_of(post_with_hints(hints_client, gray_photo(), [{"x": 16, "y": 12, "color": GREEN}]))
    red, green, blue = rgb[12, 16]
    assert green - max(red, blue) > 100
    x, y = centre_of(coloured(rgb))
    assert abs(x - 16) <= 2 and abs(y - 12) <= 2  # within one model pixel (2 x 1.5 photo pixels)
    assert not coloured(rgb, threshold=2)[30:, 40:].any()  # far from the hint: the model's gray


def test_each_hint_gives_its_own_colour_to_its_own_place(hints_client: httpx.Client) -> None:
    hints = [{"x": 10, "y": 24, "color": RED}, {"x": 54, "y": 24, "color": BLUE}]
    rgb = rgb_of(post_with_hints(hints_client, gray_photo(), hints))
    assert rgb[24, 10, 0] - rgb[24, 10, 2] > 100  # red on the left
    assert rgb[24, 54, 2] - rgb[24, 54, 0] > 100  # blue on the right


def test_hints_keep_the_photos_own_luminance(hints_client: httpx.Client) -> None:
    photo = Image.fromarray(np.tile(np.linspace(20, 235, 64, dtype=np.uint8), (48, 1)), "L")  # a gray ramp
    hints = [{"x": x, "y": 24, "color": color} for x, color in ((8, RED), (32, GREEN), (56, BLUE))]
    rgb = rgb_of(post_with_hints(hints_client, photo, hints))
    luminance = np.asarray(Image.fromarray(rgb.astype(np.uint8), "RGB").convert("L"), np.int16)
    assert np.abs(luminance - np.asarray(photo, np.int16)).max() <= 1


def test_hints_are_in_pixels_of_the_photo_as_shown_after_exif_rotation(hints_client: httpx.Client) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40x24, shown turned: 24 wide, 40 tall
    upload = encode(gray_photo(40, 24).convert("RGB"), "JPEG", exif=exif.tobytes())
    files = {"file": ("turned.jpg", upload, "image/jpeg")}
    hints = json.dumps([{"x": 6, "y": 32, "color": GREEN}])  # inside only the upright photo
    rgb = rgb_of(hints_client.post("/colorize", files=files, data={"hints": hints}))
    assert rgb.shape == (40, 24, 3)
    x, y = centre_of(coloured(rgb))
    assert abs(x - 6) <= 1.5 and abs(y - 32) <= 1.5


def test_as_many_as_max_hints_are_taken(hints_client: httpx.Client) -> None:
    hints = [{"x": i % 64, "y": i % 48, "color": GREEN} for i in range(MAX_HINTS)]
    assert post_with_hints(hints_client, gray_photo(), hints).status_code == 200


@pytest.mark.parametrize(("x", "y"), [(64, 10), (10, 48), (64.5, 0), (1e9, 1e9)])
def test_a_hint_outside_the_photo_is_refused(hints_client: httpx.Client, x: float, y: float) -> None:
    hints = [{"x": 1, "y": 1, "color": RED}, {"x": x, "y": y, "color": RED}]
    response = post_with_hints(hints_client, gray_photo(64, 48), hints)
    assert response.status_code == 422
    assert response.json()["error"] == "hint_outside_image"
    assert "64x48" in response.json()["detail"]


# Hints that are not hints, on any model


@pytest.mark.parametrize(
    ("hints", "says"),
    [
        ("[{'x': 1, 'y': 1, 'color': '#ff0000'}]", "Invalid JSON"),
        ("[{", "Invalid JSON"),
        ('{"x": 1, "y": 1, "color": "#ff0000"}', "valid array"),
        ([{"x": 1, "y": 1, "color": "red"}], "hints[0].color"),
        ([{"x": 1, "y": 1, "color": "#ff00"}], "hints[0].color"),
        ([{"x": 1, "y": 1, "color": "#ff000g"}], "hints[0].color"),
        ([{"x": 1, "color": "#ff0000"}], "hints[0].y: Field required"),
        ([{"x": -1, "y": 1, "color": "#ff0000"}], "hints[0].x"),
        ([{"x": "left", "y": 1, "color": "#ff0000"}], "hints[0].x"),
        ([{"x": 1, "y": 1, "color": "#ff0000", "size": 9}], "hints[0].size"),
        ([{"x": 1, "y": 1, "color": "#ff0000"}] * (MAX_HINTS + 1), f"at most {MAX_HINTS}"),
    ],
)
def test_malformed_hints_are_refused_saying_what_is_wrong(client: httpx.Client, hints: object, says: str) -> None:
    response = post_with_hints(client, gray_photo(), hints)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_hints"
    assert says in response.json()["detail"]


def test_hints_to_a_model_that_takes_none_are_refused(client: httpx.Client) -> None:
    response = post_with_hints(client, gray_photo(), [{"x": 1, "y": 1, "color": RED}])
    assert response.status_code == 422
    assert response.json()["error"] == "hints_unsupported"


def test_a_model_that_takes_no_hints_still_serves_without_them(client: httpx.Client) -> None:
    assert post_with_hints(client, gray_photo(), []).status_code == 200
