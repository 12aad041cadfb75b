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

from tqdm import tqdm

from service import pipeline
from service.settings import Settings

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


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
    import uvicorn

    from service.app import create_app

    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)


def colorize(argv: Sequence[str] | None = None) -> None:
    """Colorize image files and folders (recursively) into ``--out``, keeping folder structure."""
    settings = Settings()
    parser = argparse.ArgumentParser(prog="colorize", description="Colorize photos with the service's model.")
    parser.add_argument("paths", nargs="+", type=Path, help="image files or folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for the colour images")
    parser.add_argument("--model-dir", type=Path, default=settings.model_dir, help="model root or version folder")
    parser.add_argument("--format", choices=sorted(pipeline.OUTPUT_FORMATS), default="png", help="output encoding")
    parser.add_argument("--batch-size", type=int, default=settings.max_batch, help="images per model call")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1. Received: {args.batch_size}")

    missing = [path for path in args.paths if not path.exists()]
    if missing:
        parser.error(f"not found: {', '.join(map(str, missing))}")
    jobs = plan_outputs(args.paths, args.out, args.format)
    if not jobs:
        parser.error("no images found (looked for " + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    clashes = _clashes(jobs)
    if clashes:
        parser.error("these inputs would overwrite one another or an input: " + "; ".join(clashes))

    failed = run_jobs(jobs, args.model_dir, fmt=args.format, batch_size=args.batch_size, max_pixels=settings.max_pixels)
    print(f"Colorized {len(jobs) - failed} of {len(jobs)} images into {args.out}", file=sys.stderr)
    sys.exit(1 if failed else 0)


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


def run_jobs(jobs: Sequence[tuple[Path, Path]], model_dir: Path, *, fmt: str, batch_size: int, max_pixels: int) -> int:
    """Colorize each source into its destination; returns how many could not be read."""
    from service.model import load_model  # imports TensorFlow: only once there is work to do

    model = load_model(model_dir)
    failed = 0
    with tqdm(total=len(jobs), unit="image", desc="colorize") as progress:
        for chunk in _chunks(jobs, batch_size):
            grays, destinations = [], []
            for source, destination in chunk:
                try:
                    grays.append(pipeline.decode_image(source.read_bytes(), max_pixels=max_pixels))
                    destinations.append(destination)
                except (pipeline.BadImage, OSError) as error:
                    failed += 1
                    progress.write(f"skipped {source}: {error}")
            colorized = pipeline.colorize_images(grays, model.predict, model.native_size)
            for image, destination in zip(colorized, destinations, strict=True):
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(pipeline.encode_image(image, fmt))
            progress.update(len(chunk))
    return failed


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
