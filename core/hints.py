"""Colour hints: a point of the photo and the colour a user wants there.

One typed definition for everything that takes hints: the ``hints`` form field of ``POST /colorize``
(a JSON array), the ``colorize --hint X,Y,#RRGGBB`` flag and the page. Where a hint lands in the
model's input is ``colorizer_core.imaging.hint_map``; whether it is inside the photo is known only once
the photo is decoded, so that is checked there.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

MAX_HINTS = 64
COLOR_PATTERN = r"^#[0-9a-fA-F]{6}$"


class Hint(BaseModel):
    """One colour hint, in pixels of the uploaded photo (origin top-left, after EXIF rotation)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    x: float = Field(ge=0, allow_inf_nan=False, description="Pixels from the left edge; less than the width.")
    y: float = Field(ge=0, allow_inf_nan=False, description="Pixels from the top edge; less than the height.")
    color: str = Field(pattern=COLOR_PATTERN, description="The colour wanted there, as sRGB #rrggbb.")

    @property
    def rgb(self) -> tuple[float, float, float]:
        """The colour as sRGB in [0, 1]."""
        red, green, blue = (int(self.color[start : start + 2], 16) / 255.0 for start in (1, 3, 5))
        return red, green, blue


HintList = Annotated[list[Hint], Field(max_length=MAX_HINTS)]
_HINT_LIST = TypeAdapter(HintList)


class InvalidHints(ValueError):
    """Hints that are not a JSON array of at most ``MAX_HINTS`` ``{"x", "y", "color"}`` objects."""


def parse_hints(text: str) -> tuple[Hint, ...]:
    """The hints of the API's ``hints`` field, a JSON array; raises ``InvalidHints`` saying what is wrong."""
    try:
        return tuple(_HINT_LIST.validate_json(text))
    except ValidationError as error:
        raise InvalidHints(_describe(error)) from None


def parse_hint_flag(text: str) -> Hint:
    """One hint from the command line's ``X,Y,#RRGGBB``; raises ``InvalidHints``."""
    parts = text.split(",")
    if len(parts) != 3:
        raise InvalidHints(f"A hint is X,Y,#RRGGBB (e.g. 120,45,#3a7bd5). Received: {text!r}")
    x, y, color = (part.strip() for part in parts)
    try:
        return Hint.model_validate({"x": x, "y": y, "color": color})
    except ValidationError as error:
        raise InvalidHints(f"{_describe(error, 'hint')} in {text!r}") from None


def _describe(error: ValidationError, what: str = "hints") -> str:
    """``hints[3].color: String should match pattern ...``, one entry per problem."""
    problems = []
    for problem in error.errors(include_url=False):
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"])
        problems.append(f"{what}{where}: {problem['msg']}")
    return "; ".join(problems)
