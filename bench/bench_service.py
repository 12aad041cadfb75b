"""How close the service comes to the raw model: throughput under load, and one client's latency.

Measures, in one run on this machine:
  - the raw model, loaded here: images/s in batches of --max-batch, and the time of a batch-1 call;
  - the service, started here under uvicorn on loopback: images/s with --clients concurrent clients,
    and one client's median latency;
and prints their ratios (goal: throughput ratio at least 0.85). The two are measured in alternating
rounds and each ratio comes from one round, so a machine whose load drifts (other jobs) skews both
sides of a ratio alike; the median round is reported.

    python bench/bench_service.py [MODEL_DIR] [--clients 16] [--requests 128] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_DIR = REPO / "models" / "colorizer"
THROUGHPUT_GOAL = 0.85
STARTUP_TIMEOUT_S = 600.0
REQUEST_TIMEOUT_S = 600.0


@dataclass
class Round:
    raw_images_per_s: float
    service_images_per_s: float
    raw_batch1_s: float
    service_latency_s: float

    @property
    def throughput_ratio(self) -> float:
        return self.service_images_per_s / self.raw_images_per_s

    @property
    def latency_ratio(self) -> float:
        return self.service_latency_s / self.raw_batch1_s


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", nargs="?", type=Path, default=DEFAULT_MODEL_DIR, help="model root or version")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients in the throughput runs")
    parser.add_argument("--requests", type=int, default=128, help="images per throughput run (raw and service)")
    parser.add_argument("--latency-requests", type=int, default=20, help="calls per latency run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating raw/service rounds")
    parser.add_argument("--max-batch", type=int, default=16, help="COLORIZER_MAX_BATCH, and the raw batch size")
    parser.add_argument("--max-delay-ms", type=float, default=5.0, help="COLORIZER_MAX_DELAY_MS")
    parser.add_argument("--image-size", type=int, help="side of the uploaded photo (default: the model's native size)")
    return parser.parse_args()


def test_photo(side: int) -> bytes:
    """A gray photo-like PNG: smooth shading plus grain, so it neither compresses to nothing nor to noise."""
    y, x = np.mgrid[0:side, 0:side] / max(side - 1, 1)
    shading = 60 + 120 * x * (1 - y) + 40 * np.sin(6 * np.pi * y)
    grain = np.random.default_rng(0).normal(0, 6, (side, side))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(shading + grain, 0, 255).astype(np.uint8), "L").save(buffer, "PNG")
    return buffer.getvalue()


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


class RawModel:
    """The model called directly, with no service around it."""

    def __init__(self, model_dir: Path, max_batch: int) -> None:
        from service.model import load_model

        self.model = load_model(model_dir)
        size = self.model.native_size
        self.batch = np.random.default_rng(0).random((max_batch, size, size, 1), dtype=np.float32)
        self.model.warm_up((1, max_batch))

    def images_per_s(self, images: int) -> float:
        calls = max(3, images // len(self.batch))
        times = [timed(lambda: self.model.predict(self.batch)) for _ in tqdm(range(calls), desc="raw, batched")]
        return len(self.batch) / statistics.median(times)

    def batch1_s(self, calls: int) -> float:
        return statistics.median(timed(lambda: self.model.predict(self.batch[:1])) for _ in range(calls))


class Service:
    """The service under uvicorn in a subprocess, and clients that load it."""

    def __init__(self, model_dir: Path, args: argparse.Namespace, photo: bytes) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = os.environ | {
            "COLORIZER_MODEL_DIR": str(model_dir),
            "COLORIZER_MAX_BATCH": str(args.max_batch),
            "COLORIZER_MAX_DELAY_MS": str(args.max_delay_ms),
            "COLORIZER_MAX_QUEUE": str(max(64, 4 * args.clients)),
        }
        command = [sys.executable, "-m", "uvicorn", "service.app:app", "--port", str(port), "--log-level", "warning"]
        self.process = subprocess.Popen(command, env=env, cwd=REPO)
        self.url = f"http://127.0.0.1:{port}"
        self.photo = photo
        self.clients = args.clients
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"The service exited with status {self.process.returncode}")
            if time.monotonic() > deadline:
                raise SystemExit("The service did not become ready in time")
            try:
                if httpx.get(f"{self.url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)

    def images_per_s(self, images: int, description: str = "service, load") -> float:
        return images / asyncio.run(self._load(images, self.clients, description))

    def latency_s(self, requests: int) -> float:
        with httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT_S) as client:
            return statistics.median(timed(lambda: self._post(client)) for _ in range(requests))

    def mean_batch_size(self) -> float:
        wanted = ("colorizer_batch_size_sum", "colorizer_batch_size_count")
        samples = {
            sample.name: sample.value
            for family in text_string_to_metric_families(httpx.get(f"{self.url}/metrics").text)
            for sample in family.samples
            if sample.name in wanted
        }
        return samples[wanted[0]] / max(samples[wanted[1]], 1.0)

    def _post(self, client: httpx.Client) -> None:
        client.post("/colorize", files={"file": ("photo.png", self.photo, "image/png")}).raise_for_status()

    async def _load(self, total: int, clients: int, description: str) -> float:
        """Send ``total`` requests from ``clients`` concurrent loops; the wall time they took."""
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        remaining = total
        async with httpx.AsyncClient(base_url=self.url, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:

            async def client_loop(progress: tqdm) -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    response = await client.post("/colorize", files={"file": ("photo.png", self.photo, "image/png")})
                    response.raise_for_status()
                    progress.update()

            with tqdm(total=total, desc=description, unit="image") as progress:
                started = time.perf_counter()
                await asyncio.gather(*(client_loop(progress) for _ in range(clients)))
                return time.perf_counter() - started


def main() -> None:
    args = parse_args()
    raw = RawModel(args.model_dir, args.max_batch)
    side = args.image_size or raw.model.native_size
    service = Service(args.model_dir, args, test_photo(side))
    try:
        service.images_per_s(2 * args.clients, "service, warm-up")
        rounds = []
        for number in range(1, args.rounds + 1):
            measured = Round(
                raw_images_per_s=raw.images_per_s(args.requests),
                service_images_per_s=service.images_per_s(args.requests, f"service, {args.clients} clients"),
                raw_batch1_s=raw.batch1_s(args.latency_requests),
                service_latency_s=service.latency_s(args.latency_requests),
            )
            rounds.append(measured)
            tqdm.write(
                f"round {number}: throughput ratio {measured.throughput_ratio:.2f}, "
                f"latency ratio {measured.latency_ratio:.2f}"
            )
        batch_mean = service.mean_batch_size()
    finally:
        service.stop()

    median = sorted(rounds, key=lambda measured: measured.throughput_ratio)[len(rounds) // 2]
    print()
    print(f"model {args.model_dir} (native {raw.model.native_size}px), photos {side}x{side}, {os.cpu_count()} CPUs")
    print(f"median of {len(rounds)} rounds by throughput ratio:")
    print(f"  raw model, batches of {args.max_batch}:   {median.raw_images_per_s:8.1f} images/s")
    print(f"  service, {args.clients} clients:           {median.service_images_per_s:8.1f} images/s")
    print(f"  throughput ratio:                {median.throughput_ratio:8.2f}  (goal >= {THROUGHPUT_GOAL})")
    print(f"  raw model, batch of 1:           {1000 * median.raw_batch1_s:8.1f} ms")
    print(f"  service, 1 client (median):      {1000 * median.service_latency_s:8.1f} ms")
    print(f"  latency ratio:                   {median.latency_ratio:8.2f}")
    ratios = sorted(measured.throughput_ratio for measured in rounds)
    print(f"throughput ratio over the rounds: {ratios[0]:.2f} to {ratios[-1]:.2f}")
    print(f"images per model call in the service, mean: {batch_mean:.1f}")


if __name__ == "__main__":
    main()
