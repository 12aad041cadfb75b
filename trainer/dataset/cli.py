"""``colorize-train dataset ...``: build the training dataset, or scrape raw photos for it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from colorizer_trainer.dataset.build import (
    PHOTOS_COLLECTION_PATTERN,
    PHOTOS_SOURCE_PATTERN,
    BuildOptions,
    DatasetError,
    Fit,
    build_dataset,
)
from colorizer_trainer.dataset.folds import FoldsOptions, make_folds
from colorizer_trainer.dataset.scrape import ScrapeError, ScrapeOptions
from colorizer_trainer.dataset.scrape import scrape as scrape_categories

app = typer.Typer(
    help="Build the train/val/test dataset from raw photos, deal it into folds, or scrape raw photos.", no_args_is_help=True
)

_BUILD = BuildOptions()  # where each option's default is read
_SCRAPE = ScrapeOptions()
_FOLDS = FoldsOptions()


def _fail(error: Exception) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code=1)


@app.command()
def build(
    raw: Annotated[Path, typer.Argument(help="Folder of category folders: RAW/<category>/*. Only read.")],
    out: Annotated[Path, typer.Argument(help="Where train_x, train_y, test_x, test_y and manifest.json go.")],
    size: Annotated[int, typer.Option(min=1, help="Side of the square output images.")] = _BUILD.size,
    fit: Annotated[Fit, typer.Option(help="stretch (the seed's) or crop to a centre square.")] = _BUILD.fit,
    test_per_category: Annotated[int, typer.Option(min=0, help="Images of each category in test.")] = (
        _BUILD.test_per_category
    ),
    seed: Annotated[int | None, typer.Option(help="Seed for names and split; same seed, same split.")] = _BUILD.seed,
    group_by_source: Annotated[
        str | None,
        typer.Option(
            help="Regex whose group 1 names a file's source photo; a source's files stay on one side of "
            f"the split. For ../shared/datasets/photos: '{escape(PHOTOS_SOURCE_PATTERN)}'."
        ),
    ] = _BUILD.group_by_source,
    collection_of: Annotated[
        str | None,
        typer.Option(
            help="Regex whose group 1 names a file's collection; whole collections go to val and test, so "
            f"scores are on photos from elsewhere. For ../shared/datasets/photos: '{escape(PHOTOS_COLLECTION_PATTERN)}'."
        ),
    ] = _BUILD.collection_of,
    val_fraction: Annotated[float, typer.Option(help="With --collection-of: share of source photos in val.")] = (
        _BUILD.val_fraction
    ),
    test_fraction: Annotated[float, typer.Option(help="With --collection-of: share of source photos in test.")] = (
        _BUILD.test_fraction
    ),
    force: Annotated[bool, typer.Option(help="Replace a dataset already in OUT.")] = _BUILD.force,
    workers: Annotated[int, typer.Option(min=1, help="Images processed in parallel.")] = _BUILD.workers,
) -> None:
    """Clean, rename, resize and split RAW's photos into OUT, with grayscale twins and a manifest."""
    try:
        options = BuildOptions(
            size=size,
            fit=fit,
            test_per_category=test_per_category,
            seed=seed,
            group_by_source=group_by_source,
            collection_of=collection_of,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            force=force,
            workers=workers,
        )
        report = build_dataset(raw, out, options)
    except (DatasetError, ValueError) as error:
        _fail(error)
    typer.echo(report.summary())


@app.command()
def folds(
    data: Annotated[Path, typer.Argument(help="A dataset built with --collection-of. Only read.")],
    out: Annotated[Path, typer.Argument(help="Where fold0, fold1, ... and all go: datasets whose files link to DATA's.")],
    folds: Annotated[int, typer.Option(min=2, help="Folds: each validates on its share of the collections.")] = (
        _FOLDS.folds
    ),
    seed: Annotated[int, typer.Option(help="Order of collections of equal size; same seed, same folds.")] = _FOLDS.seed,
) -> None:
    """Deal DATA's train and validation collections into folds for cross-validation (test left alone)."""
    try:
        made = make_folds(data, out, FoldsOptions(folds=folds, seed=seed))
    except DatasetError as error:
        _fail(error)
    for folder, held_out in made.items():
        if held_out:
            typer.echo(f"{folder}: validates on {', '.join(held_out)}")
        else:
            typer.echo(f"{folder}: trains on every collection, for the final model once the folds have chosen")


@app.command()
def scrape(
    categories: Annotated[list[str], typer.Argument(help="Search queries; each becomes a category folder.")],
    out: Annotated[Path, typer.Option(help="RAW folder to download into.")] = Path("raw"),
    limit: Annotated[int, typer.Option(min=1, help="Images per category.")] = _SCRAPE.limit,
    timeout: Annotated[int, typer.Option(min=1, help="Seconds per connection.")] = _SCRAPE.timeout,
) -> None:
    """Download photos from Bing into OUT/<category>/ with bing-image-downloader (the seed's step 1)."""
    try:
        counts = scrape_categories(categories, out, ScrapeOptions(limit=limit, timeout=timeout))
    except (ScrapeError, ValueError) as error:
        _fail(error)
    for category, count in counts.items():
        typer.echo(f"{out / category}: {count} files")
