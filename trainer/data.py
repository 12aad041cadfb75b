"""The tf.data input pipeline over a dataset made by ``dataset build``.

Decoding runs in parallel and is cached once as uint8; each epoch then shuffles with its own seed,
so a resumed run sees exactly the batches it would have seen, and can skip those already trained on.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

IMAGE_PATTERN = "*.png"


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


def _decode_pair(gray_path: tf.Tensor, colour_path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    gray = tf.io.decode_png(tf.io.read_file(gray_path), channels=1)  # (H, W, 1) uint8
    colour = tf.io.decode_png(tf.io.read_file(colour_path), channels=3)  # (H, W, 3) uint8
    return gray, colour


def _to_float(gray: tf.Tensor, colour: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(gray, tf.float32) / 255.0, tf.cast(colour, tf.float32) / 255.0


def decoded_pairs(data_dir: Path, split: str, *, cache: bool = True) -> tf.data.Dataset:
    """Every (gray, colour) uint8 pair of a split, decoded in parallel (and cached in memory)."""
    gray_paths, colour_paths = paired_files(data_dir, split)
    files = tf.data.Dataset.from_tensor_slices((gray_paths, colour_paths))
    pairs = files.map(_decode_pair, num_parallel_calls=tf.data.AUTOTUNE)
    return pairs.cache() if cache else pairs


def training_batches(
    pairs: tf.data.Dataset, *, batch_size: int, epoch: int, seed: int, flips: bool, crop: int | None = None
) -> tf.data.Dataset:
    """One epoch of shuffled float batches ``((B, H, W, 1), (B, H, W, 3))`` in [0, 1].

    ``flips`` and ``crop`` augment each pair with randomness drawn from (seed, epoch, index), so
    an epoch replays identically after a resume.
    """
    count = int(pairs.cardinality())
    epoch_seed = seed * 100_003 + epoch
    batches = pairs.shuffle(count, seed=epoch_seed, reshuffle_each_iteration=False)
    if flips or crop:
        batches = batches.enumerate().map(
            lambda index, pair: _augment(
                *pair, seed=tf.stack([tf.cast(epoch_seed, tf.int64), index]), flip=flips, crop=crop
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return (
        batches.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def _augment(
    gray: tf.Tensor, colour: tf.Tensor, *, seed: tf.Tensor, flip: bool, crop: int | None
) -> tuple[tf.Tensor, tf.Tensor]:
    pair = tf.concat([gray, colour], axis=-1)  # (H, W, 4): one crop and flip for both
    if crop:
        pair = tf.image.stateless_random_crop(pair, [crop, crop, 4], seed=seed)
    if flip:
        pair = tf.image.stateless_random_flip_left_right(pair, seed=seed + 1)
    return pair[..., :1], pair[..., 1:]


def sample_batch(data_dir: Path, count: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The first ``count`` test pairs as float tensors, for sample grids during training."""
    pairs = decoded_pairs(data_dir, "test", cache=False).take(count).map(_to_float).batch(count)
    return next(iter(pairs))
