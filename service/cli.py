"""Command lines: ``colorize-serve`` runs the service; ``colorize PATH... --out DIR`` works offline.

Both read the same ``COLORIZER_*`` settings, so by default they use the same model; ``colorize`` runs
the service's own pipeline functions, so a file gets the same pixels either way.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from colorizer_core import imaging
from colorizer_core.hints import Hint, InvalidHints, parse_hint_flag
from colorizer_core.tensorflow_setup import device_summary, quiet_tensorflow
from colorizer_service.settings import Settings

if TYPE_CHECKING:
    from colorizer_core.inference import LoadedModel

IMAGE_SUFFIXES = imaging.file_suffixes(imaging.ACCEPTED_FORMATS)  # what a folder's images are named


def serve(argv: Sequence[str] | None = None) -> None:
    """Run the service with uvicorn; flags override the ``COLORIZER_*`` environment."""
    parser = argparse.ArgumentParser(
        prog="colorize-serve", description="Run the colorization service. Settings come from COLORIZER_* variables."
    )
    parser.add_argument("--host", help="address to listen on (COLORIZER_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (COLORIZER_PORT)")
    parser.add_argument("--model-dir", type=Path, help="model root or version folder (COLORIZER_MODEL_DIR)")
    overrides = {name: value for name, value in vars(parser.parse_args(argv)).items() if value is not None}
    settings = Settings(**overrides)

    # Imported here, not at the top: they import TensorFlow, which makes --help slow.
    quiet_tensorflow()
    import uvicorn

    from colorizer_service.app import create_app

    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    logging.getLogger("service").info("Models run on %s", device_summary())
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.shutdown_grace_s,  # in-flight requests finish first
    )


def colorize(argv: Sequence[str] | None = None) -> None:
    """Colorize image files and folders (recursively) into ``--out``, keeping folder structure."""
    settings = Settings()
    parser = _colorize_parser(settings)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1. Received: {args.batch_size}")
    if not 0 <= args.saturation <= imaging.MAX_SATURATION:
        parser.error(f"--saturation must be from 0 to {imaging.MAX_SATURATION:g}. Received: {args.saturation}")
    options = imaging.ColorizeOptions(tuple(args.hints), args.saturation, args.render_size)

    missing = [path for path in args.paths if not path.exists()]
    if missing:
        parser.error(f"not found: {', '.join(map(str, missing))}")
    jobs = plan_outputs(args.paths, args.out, args.format)
    if not jobs:
        parser.error("no images found (looked for " + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    clashes = _clashes(jobs)
    if clashes:
        parser.error("these inputs would overwrite one another or an input: " + "; ".join(clashes))

    quiet_tensorflow()
    from colorizer_core.inference import load_model  # imports TensorFlow: only once there is work to do

    model = load_model(args.model_dir)
    print(f"Model version {model.version} runs on {device_summary()}", file=sys.stderr)
    try:
        size = model.render_size(options.render_size, largest=settings.max_render_size)
    except imaging.BadOptions as error:
        parser.error(f"--render-size: {error}")
    if options.hints and not model.takes_hints:
        parser.error(f"--hint: model version {model.version} in {model.path} takes no colour hints")
    failed = run_jobs(
        jobs, model, options, size=size, fmt=args.format, batch_size=args.batch_size, max_pixels=settings.max_pixels
    )
    print(f"Colorized {len(jobs) - failed} of {len(jobs)} images into {args.out}", file=sys.stderr)
    sys.exit(1 if failed else 0)


def _colorize_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="colorize", description="Colorize photos with the service's model.")
    parser.add_argument("paths", nargs="+", type=Path, help="image files or folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for the colour images")
    parser.add_argument("--model-dir", type=Path, default=settings.model_dir, help="model root or version folder")
    parser.add_argument("--format", choices=sorted(imaging.OUTPUT_FORMATS), default="png", help="output encoding")
    parser.add_argument("--batch-size", type=int, default=settings.max_batch, help="images per model call")
    parser.add_argument(
        "--hint",
        dest="hints",
        action="append",
        type=_hint,
        default=[],
        metavar="X,Y,#RRGGBB",
        help="a colour hint at pixel (X, Y) of every photo, origin top-left; repeatable; for models that take hints",
    )
    parser.add_argument(
        "--saturation",
        type=float,
        default=1.0,
        help=f"scale the colour: 0 gray, 1 as predicted (default), up to {imaging.MAX_SATURATION:g}",
    )
    parser.add_argument(
        "--render-size",
        type=int,
        help=f"side in pixels at which the model sees each photo, {imaging.MIN_RENDER_SIZE} to "
        f"{settings.max_render_size}, rounded to the model's size multiple (default: its native size)",
    )
    return parser


def plan_outputs(paths: Sequence[Path], out: Path, fmt: str) -> list[tuple[Path, Path]]:
    """(source, destination) per image: a file goes to ``out/<stem>.<fmt>``, a folder's images below ``out``."""
    jobs = []
    for path in paths:
        if path.is_dir():
            for source in _images_in(path, out):
                jobs.append((source, out / source.relative_to(path).with_suffix(f".{fmt}")))
        elif path.is_file():
            jobs.append((path, out / f"{path.stem}.{fmt}"))
    return jobs


def run_jobs(
    jobs: Sequence[tuple[Path, Path]],
    model: LoadedModel,
    options: imaging.ColorizeOptions,
    *,
    size: int,
    fmt: str,
    batch_size: int,
    max_pixels: int,
) -> int:
    """Colorize each source into its destination at render ``size``; returns how many were skipped."""
    hints = options.hints if model.takes_hints else None
    failed = 0
    with tqdm(total=len(jobs), unit="image", desc="colorize") as progress:
        for chunk in _chunks(jobs, batch_size):
            grays, destinations = [], []
            for source, destination in chunk:
                try:
                    gray = imaging.decode_image(source.read_bytes(), max_pixels=max_pixels)
                    imaging.check_hints_inside(options.hints, gray.size)  # a hint outside this photo skips it
                    grays.append(gray)
                    destinations.append(destination)
                except (imaging.BadImage, imaging.BadOptions, OSError) as error:
                    failed += 1
                    progress.write(f"skipped {source}: {error}")
            colorized = imaging.colorize_images(grays, model.predict, size, hints=hints, saturation=options.saturation)
            for image, destination in zip(colorized, destinations, strict=True):
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(imaging.encode_image(image, fmt))
            progress.update(len(chunk))
    return failed


def _hint(text: str) -> Hint:
    """argparse's ``type`` for ``--hint``."""
    try:
        return parse_hint_flag(text)
    except InvalidHints as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _images_in(folder: Path, out: Path) -> Iterator[Path]:
    out = out.resolve()
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not path.resolve().is_relative_to(out):
            yield path


def _clashes(jobs: Sequence[tuple[Path, Path]]) -> list[str]:
    sources = {source.resolve() for source, _ in jobs}
    seen: dict[Path, Path] = {}
    clashes = []
    for source, destination in jobs:
        target = destination.resolve()
        if target in sources or target in seen:
            clashes.append(f"{source} -> {destination}")
        seen[target] = source
    return clashes


def _chunks(items: Sequence[tuple[Path, Path]], size: int) -> Iterator[Sequence[tuple[Path, Path]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
