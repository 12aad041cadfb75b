"""Our generator against the seed's: FLOPs per 200x200 image and training images/s, in one run.

    python bench/bench_models.py [--steps 3] [--batch-size 4] [--threads N]

FLOPs are counted from the graph, for one 200x200 image (with its hints input for a generator
that takes hints); images/s is measured here, one architecture after the other on the same machine
and data, each on the batches `colorize-train train` gives it (ours: random 128-px crops with
simulated hints; the seed: whole images), so only the ratio between them is meaningful.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from colorizer_core.tensorflow_setup import quiet_tensorflow

quiet_tensorflow()

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from colorizer_core import contract  # noqa: E402
from colorizer_trainer import data  # noqa: E402
from colorizer_trainer.config import TrainConfig  # noqa: E402
from colorizer_trainer.flops import count_flops  # noqa: E402
from colorizer_trainer.gans import ARCH_NAMES, get_architecture  # noqa: E402
from colorizer_trainer.train import GANTrainer, configure_runtime, use_threads  # noqa: E402

SIZE = 200


def make_dataset(root: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for index in range(count):
            colour = Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), "RGB")
            for suffix, image in (("y", colour), ("x", colour.convert("L"))):
                folder = root / f"{split}_{suffix}"
                folder.mkdir(parents=True, exist_ok=True)
                image.save(folder / f"{index:03d}.png")
    return root


def training_rate(arch: str, dataset: Path, *, batch_size: int, steps: int, threads: int | None) -> tuple[float, float]:
    """Training images per second and per CPU-second (process CPU time: steadier on a shared machine)."""
    config = TrainConfig(data=dataset, arch=arch, batch_size=batch_size, run_dir=dataset / f"run_{arch}", threads=threads)
    trainer = GANTrainer(config, configure_runtime(config, distribute=False))
    architecture = trainer.architecture
    files = data.EpochSampler(dataset, crops_per_photo=1, seed=0).epoch_files(0)
    batches = list(
        data.training_batches(
            files, batch_size=batch_size, seed=(0, 0), flips=False, crop=architecture.train_crop, hints=architecture.takes_hints
        )
    )
    trainer.gan.train_step(batches[0])["g/total"].numpy()  # trace and warm up
    start, cpu_start = time.perf_counter(), time.process_time()
    for step in range(steps):
        trainer.gan.train_step(batches[step % len(batches)])["g/total"].numpy()
    images = steps * batch_size
    return images / (time.perf_counter() - start), images / (time.process_time() - cpu_start)


def generator_inputs(takes_hints: bool) -> list[tuple[int, int, int]]:
    """Per-image input shapes: gray, and the hints map for a generator that takes hints."""
    return [(SIZE, SIZE, 1), (SIZE, SIZE, contract.HINT_CHANNELS)] if takes_hints else [(SIZE, SIZE, 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    use_threads(args.threads)  # before counting FLOPs runs TensorFlow's first op

    with tempfile.TemporaryDirectory() as folder:
        dataset = make_dataset(Path(folder), args.batch_size * 2)
        rows = {}
        for arch in ARCH_NAMES:
            architecture = get_architecture(arch)
            generator = architecture.build_generator()
            rows[arch] = (
                count_flops(generator, generator_inputs(architecture.takes_hints)) / 1e9,
                generator.count_params() / 1e6,
                *training_rate(arch, dataset, batch_size=args.batch_size, steps=args.steps, threads=args.threads),
            )
    print(f"{'arch':<6} {'GFLOPs/img':>10} {'params (M)':>10} {'train img/s':>11} {'img/CPU-s':>9}")
    for arch, (gflops, params, rate, cpu_rate) in rows.items():
        print(f"{arch:<6} {gflops:>10.2f} {params:>10.2f} {rate:>11.2f} {cpu_rate:>9.2f}")
    seed, ours = rows["seed"], rows["unet"]
    print(
        f"unet/seed: {ours[0] / seed[0]:.3f}x the FLOPs, {ours[2] / seed[2]:.1f}x the training images/s, "
        f"{ours[3] / seed[3]:.1f}x the training images per CPU-second"
    )


if __name__ == "__main__":
    main()
