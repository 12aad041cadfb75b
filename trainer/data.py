"""The tf.data input pipeline over a dataset made by ``dataset build``.

Each epoch takes at most ``crops_per_photo`` files of every source photo (the dataset's manifest
says which files share a photo), so a wallpaper cropped a hundred times weighs as much as a
snapshot kept whole; and, with ``photos_per_collection``, at most that many photos of each
collection, so one large collection does not teach its own colours as everyone's. The choice, the
shuffle and the augmentation are all seeded by the epoch's number, so a resumed run sees exactly
the batches it would have seen and can skip those already trained on. The augmentation: random
resized crops, flips, and, given a folder of cut-outs, real objects pasted on in their true colour.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps

from colorizer_core import contract

IMAGE_PATTERN = "*.png"
MANIFEST_NAME = "manifest.json"
CROP_SCALE = (0.3, 1.0)  # a random resized crop keeps this share of the photo's area
CROP_ASPECT = (3 / 4, 4 / 3)
NO_HINT_SHARE = 0.5  # training images with no hints at all: the automatic mode must stay as good
HINT_GEOMETRIC_P = 1 / 8  # otherwise the hint count is geometric with this p (Zhang et al. 2017)
MAX_TRAINING_HINTS = 32
CUTOUT_PATTERN = "*.png"
CUTOUT_SIDE = 96  # cut-outs are held trimmed to their object and scaled to fit a square this large
PASTE_SHARE = 0.5  # training crops that get cut-outs pasted on; the rest stay whole photos
PASTE_MAX_CUTOUTS = 3  # a pasted crop gets 1 to this many
PASTE_SIZE = (0.25, 0.6)  # a cut-out's side, as a share of the crop's shorter side
# ITU-R BT.601, as PIL's convert("L") made the dataset's gray twins.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def paired_files(data_dir: Path, split: str) -> tuple[list[str], list[str]]:
    """The ``{split}_x`` / ``{split}_y`` twins, matched by name."""
    gray_dir, colour_dir = Path(data_dir) / f"{split}_x", Path(data_dir) / f"{split}_y"
    names = sorted(path.name for path in gray_dir.glob(IMAGE_PATTERN))
    missing = [name for name in names if not (colour_dir / name).is_file()]
    if not names:
        raise FileNotFoundError(f"No {IMAGE_PATTERN} images in {gray_dir}: build the dataset with `colorize-train dataset build`")
    if missing:
        raise FileNotFoundError(f"{len(missing)} images of {gray_dir} have no twin in {colour_dir}, e.g. {missing[0]}")
    return [str(gray_dir / name) for name in names], [str(colour_dir / name) for name in names]


@dataclass(frozen=True)
class PhotoGroups:
    """From the dataset's manifest: the source photo each file was cut from, and the collection of
    each photo. A file the manifest does not group is its own photo; a photo it does not place, its
    own collection."""

    photo_of: dict[str, str]
    collection_of: dict[str, str]

    @classmethod
    def read(cls, data_dir: Path) -> PhotoGroups:
        manifest = Path(data_dir) / MANIFEST_NAME
        files = json.loads(manifest.read_text()).get("files", []) if manifest.is_file() else []
        grouped = [entry for entry in files if entry.get("name") and entry.get("group")]
        return cls(
            photo_of={entry["name"]: entry["group"] for entry in grouped},
            collection_of={entry["group"]: entry["collection"] for entry in grouped if entry.get("collection")},
        )

    def photo(self, file_name: str) -> str:
        return self.photo_of.get(file_name, file_name)

    def collection(self, photo: str) -> str:
        return self.collection_of.get(photo, photo)


def has_split(data_dir: Path, split: str) -> bool:
    return any((Path(data_dir) / f"{split}_x").glob(IMAGE_PATTERN))


def holdout_split(data_dir: Path) -> str | None:
    """Where choices are made and progress is shown: ``val`` when the dataset has one (test is
    scored once, at the end); datasets built before the validation split only have ``test``; a
    final model's dataset (``dataset folds``' ``all``) has neither."""
    return next((split for split in ("val", "test") if has_split(data_dir, split)), None)


class EpochSampler:
    """Which training files each epoch uses: at most ``crops_per_photo`` files of each source photo
    and, if ``photos_per_collection`` is set, at most that many photos of each collection."""

    def __init__(
        self, data_dir: Path, *, crops_per_photo: int, seed: int, photos_per_collection: int | None = None
    ) -> None:
        gray_paths, colour_paths = paired_files(data_dir, "train")
        groups = PhotoGroups.read(data_dir)
        self.by_photo: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for gray, colour in zip(gray_paths, colour_paths):
            self.by_photo[groups.photo(Path(gray).name)].append((gray, colour))
        self.by_collection: dict[str, list[str]] = defaultdict(list)
        for photo in sorted(self.by_photo):
            self.by_collection[groups.collection(photo)].append(photo)
        self.crops_per_photo = crops_per_photo
        self.photos_per_collection = photos_per_collection
        self.seed = seed

    @property
    def files_per_epoch(self) -> int:
        """Files every epoch has at least (a collection's drawn photos may differ in crop count)."""
        cap = self.photos_per_collection or len(self.by_photo)
        return sum(
            sum(sorted(min(len(self.by_photo[photo]), self.crops_per_photo) for photo in photos)[:cap])
            for photos in self.by_collection.values()
        )

    def epoch_files(self, epoch: int) -> list[tuple[str, str]]:
        rng = random.Random(f"{self.seed}/epoch/{epoch}")
        chosen = []
        for photo in self._epoch_photos(epoch):
            files = self.by_photo[photo]
            chosen.extend(rng.sample(files, min(len(files), self.crops_per_photo)))
        rng.shuffle(chosen)
        return chosen

    def _epoch_photos(self, epoch: int) -> list[str]:
        if self.photos_per_collection is None:
            return sorted(self.by_photo)
        rng = random.Random(f"{self.seed}/epoch/{epoch}/photos")
        photos = []
        for collection in sorted(self.by_collection):
            members = self.by_collection[collection]
            photos.extend(rng.sample(members, min(len(members), self.photos_per_collection)))
        return sorted(photos)


class UnreadableImage(ValueError):
    """A dataset file that cannot be decoded (truncated, overwritten, deleted); the message names it."""


def _decode_pair(gray_path: tf.Tensor, colour_path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    gray = tf.io.decode_png(tf.io.read_file(gray_path), channels=1)  # (H, W, 1) uint8
    colour = tf.io.decode_png(tf.io.read_file(colour_path), channels=3)  # (H, W, 3) uint8
    return gray, colour


DECODE_ERRORS = (tf.errors.InvalidArgumentError, tf.errors.DataLossError, tf.errors.NotFoundError)


def find_unreadable(files: list[tuple[str, str]]) -> UnreadableImage | None:
    """The first file of ``files`` that the pipeline cannot decode, as an error naming it; None if all decode."""
    for pair in files:
        for path, channels in zip(pair, (1, 3)):
            try:
                tf.io.decode_png(tf.io.read_file(path), channels=channels)
            except DECODE_ERRORS as error:
                reason = error.message.splitlines()[0] if error.message else type(error).__name__
                return UnreadableImage(
                    f"{path} cannot be decoded as a PNG ({reason}). Delete it and its twin, or rebuild the dataset "
                    "with `colorize-train dataset build`; then rerun the same command to resume."
                )
    return None


def _to_float(gray: tf.Tensor, colour: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(gray, tf.float32) / 255.0, tf.cast(colour, tf.float32) / 255.0


def training_batches(
    files: list[tuple[str, str]],
    *,
    batch_size: int,
    seed: tuple[int, int],
    flips: bool,
    crop: int | None = None,
    hints: bool = False,
    cutouts: tf.Tensor | None = None,
    film_share: float = 0.0,
    indices: list[int] | None = None,
) -> tf.data.Dataset:
    """Float batches ``((B, h, w, 1), (B, h, w, 3), (B, h, w, 4))`` of gray, colour and hints.

    ``flips``, ``crop`` (random resized crops of this side), pasted ``cutouts`` (``load_cutouts``),
    a ``film_share`` of grays remade as some film would record them (``random_film_gray``) and simulated
    ``hints`` draw their randomness from (seed, index), so a batch replays identically after a resume,
    on any number of replicas. ``indices``: each file's place in the epoch (default: 0, 1, ...), for a
    part of it.
    """
    indices = list(range(len(files))) if indices is None else indices
    if len(indices) != len(files):
        raise ValueError(f"`indices` must number the files. Received: {len(indices)} indices for {len(files)} files")
    gray_paths = tf.constant([gray for gray, _ in files], tf.string)
    colour_paths = tf.constant([colour for _, colour in files], tf.string)
    pairs = tf.data.Dataset.from_tensor_slices((tf.constant(indices, tf.int64), (gray_paths, colour_paths)))
    base_seed = tf.constant(seed, tf.int64)

    def prepare(index, paths):
        gray, colour = _to_float(*_decode_pair(*paths))
        item_seed = base_seed + tf.stack([tf.constant(0, tf.int64), index])
        gray, colour = _augment(gray, colour, seed=item_seed, flip=flips, crop=crop)
        if cutouts is not None:
            gray, colour = paste_cutouts(gray, colour, cutouts, item_seed + 11)
        if film_share:
            gray = random_film_gray(gray, colour, film_share, item_seed + 13)
        hint_map = simulate_hints(colour, item_seed + 7) if hints else tf.zeros_like(colour[..., :1])
        return gray, colour, hint_map

    return (
        pairs.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def pipeline_share(
    first: int, end: int, *, global_batch_size: int, pipeline: int, pipelines: int
) -> list[int]:
    """Indices in ``[first, end)`` that input pipeline ``pipeline`` of ``pipelines`` reads.

    Global batch ``i`` is files ``[i * G, (i + 1) * G)``; each pipeline (one per worker) takes its
    own consecutive ``G / pipelines`` of them, which its replicas split in turn. So the same files
    make up each step, and get the same augmentation, whatever the number of workers and replicas.
    """
    if global_batch_size % pipelines:
        raise ValueError(
            f"The global batch must split evenly between input pipelines. Received: global_batch_size={global_batch_size}, "
            f"pipelines={pipelines}"
        )
    local = global_batch_size // pipelines
    return [index for index in range(first, end) if (index % global_batch_size) // local == pipeline]


def _augment(
    gray: tf.Tensor, colour: tf.Tensor, *, seed: tf.Tensor, flip: bool, crop: int | None
) -> tuple[tf.Tensor, tf.Tensor]:
    pair = tf.concat([gray, colour], axis=-1)  # (H, W, 4): one crop and flip for both
    if crop:
        pair = _random_resized_crop(pair, crop, seed)
    if flip:
        pair = tf.image.stateless_random_flip_left_right(pair, seed=seed + 1)
    return pair[..., :1], pair[..., 1:]


def _random_resized_crop(image: tf.Tensor, side: int, seed: tf.Tensor) -> tf.Tensor:
    """A random box of ``CROP_SCALE`` of the area and ``CROP_ASPECT``, resized to ``side`` x ``side``."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed + 2,
        min_object_covered=CROP_SCALE[0],
        aspect_ratio_range=CROP_ASPECT,
        area_range=CROP_SCALE,
        use_image_if_no_bounding_boxes=True,
    )
    box = tf.slice(image, begin, size)
    return tf.image.resize(box, [side, side], method="bilinear", antialias=True)


def load_cutouts(folder: Path) -> tf.Tensor:
    """Objects on a transparent background (``CUTOUT_PATTERN`` under ``folder``, at any depth), each
    trimmed to its opaque part, scaled to fit and centred on a transparent ``CUTOUT_SIDE`` square:
    ``(N, S, S, 4)`` floats, colour premultiplied by alpha so that resizing leaves no fringe. Fully
    opaque images are not cut-outs and are left out; a file that is no image is named in the error."""
    cutouts = []
    for path in sorted(Path(folder).rglob(CUTOUT_PATTERN)):
        try:
            with Image.open(path) as image:
                rgba = image.convert("RGBA")
        except OSError as error:  # PIL's unidentified and truncated images are OSErrors
            raise ValueError(f"{path} cannot be read as a cut-out ({error}). Delete it or replace it with a PNG.") from None
        alpha = rgba.getchannel("A")
        if alpha.getextrema()[0] == 255 or alpha.getbbox() is None:
            continue
        rgba = ImageOps.contain(rgba.crop(alpha.getbbox()), (CUTOUT_SIDE, CUTOUT_SIDE), Image.Resampling.LANCZOS)
        square = Image.new("RGBA", (CUTOUT_SIDE, CUTOUT_SIDE))
        square.paste(rgba, ((CUTOUT_SIDE - rgba.width) // 2, (CUTOUT_SIDE - rgba.height) // 2))
        cutouts.append(np.asarray(square, np.float32) / 255.0)
    if not cutouts:
        raise FileNotFoundError(f"No cut-outs (PNG images with a transparent background) under {folder}")
    stack = np.stack(cutouts)
    stack[..., :3] *= stack[..., 3:]
    return tf.constant(stack)


def paste_cutouts(
    gray: tf.Tensor, colour: tf.Tensor, cutouts: tf.Tensor, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """On ``PASTE_SHARE`` of crops, 1 to ``PASTE_MAX_CUTOUTS`` random cut-outs at random sizes and
    places, mirrored at random: a real object's true colour in a new scene (copy-paste, Ghiasi et
    al. 2021). The gray twin gets each cut-out's luma, so the pair stays a photo and its gray."""
    height, width = tf.shape(colour)[0], tf.shape(colour)[1]
    shorter = tf.cast(tf.minimum(height, width), tf.float32)
    chance, share = tf.unstack(tf.random.stateless_uniform([2], seed))
    count = tf.where(chance < PASTE_SHARE, tf.math.ceil(share * PASTE_MAX_CUTOUTS), 0.0)
    draws = tf.random.stateless_uniform([PASTE_MAX_CUTOUTS, 5], seed + 1)
    luma = tf.constant(LUMA_WEIGHTS)
    for slot in range(PASTE_MAX_CUTOUTS):
        which, size_draw, top_draw, left_draw, mirror = tf.unstack(draws[slot])
        cutout = cutouts[tf.cast(which * tf.cast(tf.shape(cutouts)[0], tf.float32), tf.int32)]
        cutout = tf.cond(mirror < 0.5, lambda: cutout[:, ::-1], lambda: cutout)
        side = tf.cast(tf.round(shorter * (PASTE_SIZE[0] + size_draw * (PASTE_SIZE[1] - PASTE_SIZE[0]))), tf.int32)
        cutout = tf.image.resize(cutout, [side, side], antialias=True)
        top = tf.cast(top_draw * tf.cast(height - side + 1, tf.float32), tf.int32)
        left = tf.cast(left_draw * tf.cast(width - side + 1, tf.float32), tf.int32)
        layer = tf.image.pad_to_bounding_box(cutout, top, left, height, width)
        layer *= tf.cast(slot < count, tf.float32)
        premultiplied, alpha = layer[..., :3], layer[..., 3:]
        colour = colour * (1.0 - alpha) + premultiplied
        gray = gray * (1.0 - alpha) + tf.reduce_sum(premultiplied * luma, axis=-1, keepdims=True)
    return gray, colour


def random_film_gray(gray: tf.Tensor, colour: tf.Tensor, share: float, seed: tf.Tensor) -> tf.Tensor:
    """With probability ``share``, the gray twin remade from ``colour`` with random weights on red, green and blue.

    Old photos were taken on films whose response is not the eye's (orthochromatic film is nearly blind to
    red; a red filter darkens skies), so how bright a colour came out says less about it than BT.601 luma
    does. The weights are uniform on the simplex (a flat Dirichlet, from normalised exponentials).
    """
    draws = tf.random.stateless_uniform([4], seed=seed, minval=1e-6, maxval=1.0)
    exponentials = -tf.math.log(draws[:3])
    weights = exponentials / tf.reduce_sum(exponentials)
    remade = tf.reduce_sum(colour * weights, axis=-1, keepdims=True)
    return tf.where(draws[3] < share, remade, gray)


def simulate_hints(colour: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Hints ``(H, W, 4)`` a user might have given for this photo (Zhang et al. 2017).

    Often none; otherwise a geometric number of points at random places, each painted as a
    ``HINT_PATCH`` square of the true mean colour of that square, as core/contract.py paints clicks.
    """
    height, width = tf.shape(colour)[0], tf.shape(colour)[1]
    draw = tf.random.stateless_uniform([2], seed)
    geometric = tf.floor(tf.math.log(draw[1]) / tf.math.log(1.0 - HINT_GEOMETRIC_P)) + 1.0
    count = tf.where(draw[0] < NO_HINT_SHARE, 0.0, tf.minimum(geometric, MAX_TRAINING_HINTS))
    rows = tf.random.stateless_uniform([MAX_TRAINING_HINTS], seed + 1, maxval=height, dtype=tf.int32)
    columns = tf.random.stateless_uniform([MAX_TRAINING_HINTS], seed + 2, maxval=width, dtype=tf.int32)
    used = tf.cast(tf.range(MAX_TRAINING_HINTS, dtype=tf.float32) < count, tf.float32)
    points = tf.scatter_nd(tf.stack([rows, columns], axis=-1), used, tf.stack([height, width]))
    points = tf.minimum(points, 1.0)[..., None]  # (H, W, 1): 1 at each hint's centre

    patch = contract.HINT_PATCH
    patch_mean = tf.nn.avg_pool2d(colour[None], patch, 1, "SAME")[0]  # (H, W, 3)
    ones = tf.ones([patch, patch, 4, 1])
    spread = tf.nn.depthwise_conv2d(tf.concat([patch_mean * points, points], -1)[None], ones, [1] * 4, "SAME")[0]
    coverage = spread[..., 3:]
    mask = tf.cast(coverage > 0, tf.float32)
    return tf.concat([spread[..., :3] / tf.maximum(coverage, 1.0), mask], axis=-1)


def holdout_pairs(data_dir: Path, count: int, split: str) -> tuple[tf.Tensor, tf.Tensor]:
    """The first ``count`` pairs of ``split`` as float tensors, for sample grids during training."""
    gray_paths, colour_paths = paired_files(data_dir, split)
    gray_paths, colour_paths = gray_paths[:count], colour_paths[:count]
    pairs = tf.data.Dataset.from_tensor_slices((gray_paths, colour_paths))
    try:
        return next(iter(pairs.map(_decode_pair).map(_to_float).batch(count)))
    except DECODE_ERRORS as error:
        raise find_unreadable(list(zip(gray_paths, colour_paths))) or error from None
