"""Training images/s with one replica and with two, on this machine, in one run.

    python bench/bench_replicas.py [--arch unet] [--batch-size 4] [--steps 6] [--threads N]

One replica is the default strategy; two is ``MirroredStrategy`` over two GPUs when the machine has
them, else over two logical CPU devices (which share the same cores: there the ratio shows that the
distributed path works and what it costs, not that it scales). Each replica gets ``--batch-size``
images per step, as ``colorize-train train`` gives them, so two replicas train twice the global batch.
Each count runs in a process of its own, since logical devices must be set before TensorFlow starts.
Images per CPU-second (process CPU time, all threads) is printed beside images/s: on a machine
that other jobs share, it is the steadier of the two.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULT_PREFIX = "RESULT "


def measure(replicas: int, args: argparse.Namespace) -> dict:
    """Run in a child process: train ``args.steps`` timed steps on ``replicas`` replicas."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if replicas > 1 and len(gpus) < replicas:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)

    from bench_models import make_dataset

    from colorizer_trainer import data
    from colorizer_trainer.config import TrainConfig
    from colorizer_trainer.train import GANTrainer, configure_runtime

    with tempfile.TemporaryDirectory() as folder:
        global_batch = args.batch_size * replicas
        dataset = make_dataset(Path(folder), global_batch * 2)
        config = TrainConfig(
            data=dataset, arch=args.arch, batch_size=args.batch_size, run_dir=dataset / "run", threads=args.threads,
            strategy="default" if replicas == 1 else "mirrored", mixed_precision="off",
        )  # fmt: skip
        trainer = GANTrainer(config, configure_runtime(config))
        assert trainer.strategy.num_replicas_in_sync == replicas, trainer.strategy
        files = data.EpochSampler(dataset, crops_per_photo=1, seed=0).epoch_files(0)
        steps_per_epoch = len(files) // global_batch
        batches = list(trainer.distributed_batches(files, epoch=0, first_step=0, steps=steps_per_epoch))
        trainer.gan.train_step(batches[0])["g/total"].numpy()  # trace and warm up
        start, cpu_start = time.perf_counter(), time.process_time()
        for step in range(args.steps):
            trainer.gan.train_step(batches[step % len(batches)])["g/total"].numpy()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        if replicas == 1:
            devices = ["default strategy: " + ("/GPU:0" if gpus else "/CPU:0")]
        else:
            devices = list(trainer.strategy.extended.worker_devices)
    images = args.steps * global_batch
    return {"replicas": replicas, "devices": devices, "images_per_second": images / seconds, "images_per_cpu_second": images / cpu_seconds}


def run_child(replicas: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", str(replicas), "--arch", args.arch, "--batch-size", str(args.batch_size), "--steps", str(args.steps)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    root = Path(__file__).resolve().parents[1]
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(root), str(root / "bench"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the {replicas}-replica run failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="unet")
    parser.add_argument("--batch-size", type=int, default=4, help="images per replica per step")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(RESULT_PREFIX + json.dumps(measure(args.child, args)), flush=True)
        return

    one, two = run_child(1, args), run_child(2, args)
    print(f"{'replicas':>8} {'images/s':>9} {'images/CPU-s':>12}  devices")
    for row in (one, two):
        print(f"{row['replicas']:>8} {row['images_per_second']:>9.2f} {row['images_per_cpu_second']:>12.2f}  {', '.join(row['devices'])}")
    ratio = {key: two[key] / one[key] for key in ("images_per_second", "images_per_cpu_second")}
    print(f"two replicas / one: {ratio['images_per_second']:.2f}x the training images/s, {ratio['images_per_cpu_second']:.2f}x "
          f"the images per CPU-second ({args.arch}, {args.batch_size} images per replica per step, {os.cpu_count()} CPU cores)")


if __name__ == "__main__":
    main()
