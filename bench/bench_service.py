"""How close the service comes to the raw model, where its time goes, and how it behaves under load.

Measures, in one run on this machine, against one service started here under uvicorn on loopback:
  1. ratios, for each photo size in --sizes: the service's images/s with --clients concurrent clients
     against the raw model's (loaded here) in batches of --max-batch (goal: at least 0.85), and one
     client's median latency against the raw model's batch-1 call (goal: at most 1.3). The two sides
     are measured in alternating rounds and each ratio comes from one round, so a machine whose load
     drifts (other jobs) skews both sides alike; the median round is reported;
  2. stages: CPU milliseconds per image of each step (decode, model input, model, chroma merge,
     encode, HTTP) at --stage-mpx megapixels, the first five timed here in-process, HTTP as what the
     service process spends per request beyond them;
  3. load: latency p50/p95/p99 and images/s with --concurrency closed-loop clients;
  4. open loop: requests sent at a fixed rate past saturation (--overload times the best closed-loop
     rate): the answers' latency stays bounded because the excess gets 503, not a place in a queue.
It prints a report, writes it as JSON, and plots throughput and p99 against concurrency, and the
stages, as PNGs (--out, default docs/).

    python bench/bench_service.py [MODEL_DIR] [--sizes 200 1000] [--rounds 5]

It measures the installed colorizer packages (for a before and after, install the other checkout in
its own venv and run its bench). HTTP's share reads the service's CPU time from /proc, so it needs Linux.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from tqdm import tqdm

from colorizer_core.tensorflow_setup import quiet_tensorflow

REPO = Path(__file__).resolve().parents[1]
THROUGHPUT_GOAL = 0.85
LATENCY_GOAL = 1.3
STARTUP_TIMEOUT_S = 600.0
REQUEST_TIMEOUT_S = 600.0
STAGES = ("decode", "model input", "model", "chroma merge", "encode", "HTTP")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", nargs="?", type=Path, help="model root or version (default: the bundled one)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000], help="photo sides for the ratios")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients in the throughput runs")
    parser.add_argument("--requests", type=int, default=128, help="images per throughput run (raw and service)")
    parser.add_argument("--latency-requests", type=int, default=20, help="calls per latency run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating raw/service rounds per size")
    parser.add_argument("--max-batch", type=int, default=16, help="COLORIZER_MAX_BATCH, and the raw batch size")
    parser.add_argument("--max-queue", type=int, default=64, help="COLORIZER_MAX_QUEUE")
    parser.add_argument("--stage-mpx", type=float, nargs="+", default=[0.04, 1.0, 4.0], help="sizes for stages")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64], help="clients in load runs")
    parser.add_argument("--load-size", type=int, default=200, help="photo side in the load runs")
    parser.add_argument("--overload", type=float, default=2.0, help="open-loop rate / best closed-loop rate")
    parser.add_argument(
        "--open-seconds", type=float, default=8.0, help="open-loop length, at least 3x --max-queue requests"
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["ratios", "stages", "load"], help="parts to skip")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="folder for the JSON and the plots")
    parser.add_argument("--name", default="bench-service", help="file name stem of the JSON and the plots")
    parser.add_argument("--machine", default="", help="what to call this machine in the report")
    parser.add_argument("--report", type=Path, help="print and plot a saved JSON again; measure nothing")
    return parser.parse_args()


def test_photo(side: int) -> bytes:
    """A gray photo-like PNG: smooth shading plus grain, so it neither compresses to nothing nor to noise."""
    y, x = np.mgrid[0:side, 0:side] / max(side - 1, 1)
    shading = 60 + 120 * x * (1 - y) + 40 * np.sin(6 * np.pi * y)
    grain = np.random.default_rng(0).normal(0, 6, (side, side))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(shading + grain, 0, 255).astype(np.uint8), "L").save(buffer, "PNG")
    return buffer.getvalue()


def side_for(megapixels: float) -> int:
    return round((megapixels * 1e6) ** 0.5)


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def cpu_ms(function: Callable[[], object], repeats: int) -> float:
    """CPU milliseconds (all of this process's threads) per call of ``function``, after one warm-up call."""
    function()
    started = time.process_time()
    for _ in range(repeats):
        function()
    return 1000 * (time.process_time() - started) / repeats


def percentiles(seconds: list[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(np.asarray(seconds) * 1000, [50, 95, 99]) if seconds else (np.nan,) * 3
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


class RawModel:
    """The model called directly, with no service around it."""

    def __init__(self, model_dir: Path, max_batch: int) -> None:
        from colorizer_core.inference import load_model

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


@dataclass
class Answer:
    status: int
    seconds: float


class Service:
    """The service under uvicorn in a subprocess, and clients that load it."""

    def __init__(self, model_dir: Path, args: argparse.Namespace) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = os.environ | {
            "COLORIZER_MODEL_DIR": str(model_dir),
            "COLORIZER_MAX_BATCH": str(args.max_batch),
            "COLORIZER_MAX_QUEUE": str(args.max_queue),
        }
        command = [sys.executable, "-m", "uvicorn", "colorizer_service.app:app", "--port", str(port), "--log-level", "warning"]
        self.process = subprocess.Popen(command, env=env)
        self.url = f"http://127.0.0.1:{port}"
        self.open_loop_minimum = 3 * args.max_queue  # enough that the excess overflows the queue
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

    def cpu_s(self) -> float:
        """CPU seconds the service process has used so far (user + system, all threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def mean_batch_size(self) -> float:
        wanted = ("colorizer_batch_size_sum", "colorizer_batch_size_count")
        samples = {
            sample.name: sample.value
            for family in text_string_to_metric_families(httpx.get(f"{self.url}/metrics").text)
            for sample in family.samples
            if sample.name in wanted
        }
        return samples[wanted[0]] / max(samples[wanted[1]], 1.0)

    def latency_s(self, photo: bytes, requests: int) -> float:
        with httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT_S) as client:
            def post() -> None:
                client.post("/colorize", files={"file": ("photo.png", photo)}).raise_for_status()

            post()
            return statistics.median(timed(post) for _ in range(requests))

    def closed_loop(self, photo: bytes, total: int, clients: int, description: str) -> tuple[float, list[Answer]]:
        """``total`` requests from ``clients`` loops that each send the next when the last is answered."""
        return asyncio.run(self._closed_loop(photo, total, clients, description))

    async def _closed_loop(
        self, photo: bytes, total: int, clients: int, description: str
    ) -> tuple[float, list[Answer]]:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        remaining = total
        answers: list[Answer] = []
        async with httpx.AsyncClient(base_url=self.url, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:

            async def client_loop(progress: tqdm) -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    started = time.perf_counter()
                    response = await client.post("/colorize", files={"file": ("photo.png", photo)})
                    answers.append(Answer(response.status_code, time.perf_counter() - started))
                    progress.update()

            with tqdm(total=total, desc=description, unit="image", leave=False) as progress:
                started = time.perf_counter()
                await asyncio.gather(*(client_loop(progress) for _ in range(clients)))
                return time.perf_counter() - started, answers

    def open_loop(self, photo: bytes, rate: float, seconds: float) -> tuple[float, list[Answer]]:
        """Requests sent at ``rate`` per second for ``seconds``, whether or not earlier ones were answered.

        Each latency counts from when its request was due, so a client that falls behind shows as latency.
        """
        return asyncio.run(self._open_loop(photo, rate, seconds))

    async def _open_loop(self, photo: bytes, rate: float, seconds: float) -> tuple[float, list[Answer]]:
        count = max(round(rate * seconds), self.open_loop_minimum)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
        answers: list[Answer] = []
        async with httpx.AsyncClient(base_url=self.url, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:

            async def one(due: float) -> None:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                response = await client.post("/colorize", files={"file": ("photo.png", photo)})
                answers.append(Answer(response.status_code, time.perf_counter() - due))

            started = time.perf_counter()
            await asyncio.gather(*(one(started + index / rate) for index in range(count)))
            return time.perf_counter() - started, answers


# 1. Ratios ---------------------------------------------------------------------------------------


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


def measure_ratios(raw: RawModel, service: Service, side: int, args: argparse.Namespace) -> dict:
    photo = test_photo(side)
    service.closed_loop(photo, 2 * args.clients, args.clients, "service, warm-up")
    rounds = []
    for number in range(1, args.rounds + 1):
        raw_rate = raw.images_per_s(args.requests)
        seconds, answers = service.closed_loop(photo, args.requests, args.clients, f"{side}px, {args.clients} clients")
        assert all(answer.status == 200 for answer in answers), {answer.status for answer in answers}
        measured = Round(raw_rate, args.requests / seconds, raw.batch1_s(args.latency_requests),
                         service.latency_s(photo, args.latency_requests))  # fmt: skip
        rounds.append(measured)
        tqdm.write(
            f"{side}x{side} round {number}: throughput ratio {measured.throughput_ratio:.2f}, "
            f"latency ratio {measured.latency_ratio:.2f}"
        )
    median = sorted(rounds, key=lambda measured: measured.throughput_ratio)[len(rounds) // 2]
    latency = sorted(rounds, key=lambda measured: measured.latency_ratio)[len(rounds) // 2]
    return {
        "side": side,
        "rounds": [asdict(measured) | {"throughput_ratio": measured.throughput_ratio} for measured in rounds],
        "raw_images_per_s": median.raw_images_per_s,
        "service_images_per_s": median.service_images_per_s,
        "throughput_ratio": median.throughput_ratio,
        "throughput_ratio_range": [min(r.throughput_ratio for r in rounds), max(r.throughput_ratio for r in rounds)],
        "raw_batch1_ms": 1000 * latency.raw_batch1_s,
        "service_latency_ms": 1000 * latency.service_latency_s,
        "latency_ratio": latency.latency_ratio,
    }


# 2. Stages ---------------------------------------------------------------------------------------


def measure_stages(raw: RawModel, service: Service, megapixels: float, requests: int) -> dict:
    """CPU ms per image of each stage for a photo of ``megapixels``, and the HTTP rest from the service."""
    from colorizer_core import imaging

    side = side_for(megapixels)
    photo = test_photo(side)
    size = raw.model.native_size
    repeats = max(3, round(8 / max(megapixels, 0.05)))
    gray = imaging.decode_image(photo, max_pixels=10**9)
    model_in = imaging.model_input(gray, size)
    rgb = raw.model.predict(model_in[None])[0]
    colour = imaging.apply_chroma(gray, rgb)
    stages = {
        "decode": cpu_ms(lambda: imaging.decode_image(photo, max_pixels=10**9), repeats),
        "model input": cpu_ms(lambda: imaging.model_input(gray, size), repeats),
        "model": cpu_ms(lambda: raw.model.predict(raw.batch), 3) / len(raw.batch),  # batched, as under load
        "chroma merge": cpu_ms(lambda: imaging.apply_chroma(gray, rgb), repeats),
        "encode": cpu_ms(lambda: imaging.encode_image(colour, "png"), repeats),
    }
    model_batch1 = cpu_ms(lambda: raw.model.predict(model_in[None]), 5)
    service.latency_s(photo, 1)  # warm
    before = service.cpu_s()
    service.latency_s(photo, requests)
    per_request = 1000 * (service.cpu_s() - before) / (requests + 1)  # latency_s sends one more to warm up
    in_process = sum(stages[stage] for stage in STAGES[:-1] if stage != "model") + model_batch1
    stages["HTTP"] = max(0.0, per_request - in_process)
    tqdm.write(f"stages at {megapixels:g} Mpx: " + ", ".join(f"{stage} {ms:.1f}" for stage, ms in stages.items()))
    return {"megapixels": side * side / 1e6, "side": side, "upload_kb": len(photo) / 1000,
            "answer_kb": len(imaging.encode_image(colour, "png")) / 1000, "cpu_ms": stages}  # fmt: skip


# 3 and 4. Load -----------------------------------------------------------------------------------


def summarize(seconds: float, answers: list[Answer]) -> dict:
    ok = [answer.seconds for answer in answers if answer.status == 200]
    return {
        "requests": len(answers),
        "ok": len(ok),
        "refused_503": sum(answer.status == 503 for answer in answers),
        "other": sum(answer.status not in (200, 503) for answer in answers),
        "images_per_s": len(ok) / seconds,
        **percentiles(ok),
        "max_ms": 1000 * max((answer.seconds for answer in answers), default=np.nan),
    }


def measure_load(service: Service, args: argparse.Namespace) -> dict:
    photo = test_photo(args.load_size)
    closed = []
    for clients in args.concurrency:
        total = max(4 * clients, 64)
        row = {"clients": clients, **summarize(*service.closed_loop(photo, total, clients, f"{clients} clients"))}
        closed.append(row)
        tqdm.write(
            f"{clients:3d} clients: {row['images_per_s']:.1f} images/s, p50 {row['p50_ms']:.0f} ms, "
            f"p95 {row['p95_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, 503s {row['refused_503']}"
        )
    rate = args.overload * max(row["images_per_s"] for row in closed)
    opened = {"rate_per_s": rate, **summarize(*service.open_loop(photo, rate, args.open_seconds))}
    tqdm.write(
        f"open loop at {rate:.1f}/s: {opened['ok']} answered (p50 {opened['p50_ms']:.0f} ms, "
        f"p99 {opened['p99_ms']:.0f} ms), {opened['refused_503']} refused with 503, slowest {opened['max_ms']:.0f} ms"
    )
    return {"photo_side": args.load_size, "closed_loop": closed, "open_loop": opened}


# Report ------------------------------------------------------------------------------------------


def plot(results: dict, out: Path, name: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    title = f"{results['machine']}, {results['when']}"
    if "load" in results:
        rows = results["load"]["closed_loop"]
        clients = [row["clients"] for row in rows]
        figure, left = plt.subplots(figsize=(7, 4.2))
        left.plot(clients, [row["images_per_s"] for row in rows], "o-", color="tab:blue", label="images/s")
        left.set_xscale("log", base=2)
        left.set_xticks(clients, [str(count) for count in clients])
        left.set_xlabel("concurrent clients (closed loop)")
        left.set_ylabel("images/s", color="tab:blue")
        left.set_ylim(bottom=0)
        right = left.twinx()
        right.plot(clients, [row["p99_ms"] for row in rows], "s--", color="tab:red", label="p99 latency")
        right.plot(clients, [row["p50_ms"] for row in rows], ".:", color="tab:red", alpha=0.6, label="p50 latency")
        right.set_ylabel("latency, ms", color="tab:red")
        right.set_ylim(bottom=0)
        opened = results["load"]["open_loop"]
        left.set_title(
            f"{results['load']['photo_side']}px photos; open loop at {opened['rate_per_s']:.0f}/s: "
            f"p99 {opened['p99_ms']:.0f} ms, {opened['refused_503']} x 503\n{title}",
            fontsize=9,
        )
        figure.legend(loc="upper left", bbox_to_anchor=(0.12, 0.88), fontsize=8)
        figure.tight_layout()
        written.append(out / f"{name}-load.png")
        figure.savefig(written[-1], dpi=110)
        plt.close(figure)
    if "stages" in results:
        figure, axes = plt.subplots(1, 2, figsize=(10, 4.2))
        width = 0.8 / len(results["stages"])
        for offset, row in enumerate(results["stages"]):
            positions = np.arange(len(STAGES)) + (offset - (len(results["stages"]) - 1) / 2) * width
            per_image = [row["cpu_ms"][stage] for stage in STAGES]
            per_mpx = [ms / row["megapixels"] if stage != "model" else np.nan for stage, ms in zip(STAGES, per_image)]
            label = f"{row['megapixels']:.2g} Mpx"
            axes[0].bar(positions, per_image, width, label=label)
            axes[1].bar(positions, per_mpx, width, label=label)
        for axis, ylabel in zip(axes, ("CPU ms per image (log)", "CPU ms per megapixel")):
            axis.set_xticks(np.arange(len(STAGES)), STAGES, rotation=20, fontsize=8)
            axis.set_ylabel(ylabel)
            axis.legend(fontsize=8)
        axes[0].set_yscale("log")
        axes[1].set_title("per megapixel (the model sees every photo at its own size)", fontsize=8)
        figure.suptitle(f"Where the CPU goes, per stage; {title}", fontsize=9)
        figure.tight_layout()
        written.append(out / f"{name}-stages.png")
        figure.savefig(written[-1], dpi=110)
        plt.close(figure)
    return written


def report(results: dict) -> None:
    print()
    print(f"{results['machine']}; {results['when']}")
    for row in results.get("ratios", []):
        side = row["side"]
        low, high = row["throughput_ratio_range"]
        print(f"photos {side}x{side}, median of {len(row['rounds'])} rounds:")
        print(f"  raw model, batches of {results['max_batch']}: {row['raw_images_per_s']:8.1f} images/s")
        print(f"  service, {results['clients']} clients:      {row['service_images_per_s']:8.1f} images/s")
        print(
            f"  throughput ratio:           {row['throughput_ratio']:8.2f}  "
            f"({low:.2f} to {high:.2f}; goal >= {THROUGHPUT_GOAL})"
        )
        print(f"  raw model, batch of 1:      {row['raw_batch1_ms']:8.1f} ms")
        print(f"  service, 1 client (median): {row['service_latency_ms']:8.1f} ms")
        print(f"  latency ratio:              {row['latency_ratio']:8.2f}  (goal <= {LATENCY_GOAL})")
    if "mean_batch" in results:
        print(f"images per model call in the service, mean over the ratio runs: {results['mean_batch']:.1f}")
    if "stages" in results:
        print("CPU ms per image: " + " | ".join(f"{stage:>12}" for stage in STAGES))
        for row in results["stages"]:
            cells = " | ".join(f"{row['cpu_ms'][stage]:12.2f}" for stage in STAGES)
            print(f"  {row['megapixels']:5.2f} Mpx       " + cells)
    if "load" in results:
        print(f"closed loop, {results['load']['photo_side']}px photos: clients, images/s, p50/p95/p99 ms, 503s")
        for row in results["load"]["closed_loop"]:
            print(
                f"  {row['clients']:3d}  {row['images_per_s']:7.1f}  "
                f"{row['p50_ms']:7.0f} {row['p95_ms']:7.0f} {row['p99_ms']:7.0f}  {row['refused_503']}"
            )
        opened = results["load"]["open_loop"]
        print(
            f"open loop at {opened['rate_per_s']:.1f} requests/s: {opened['ok']} answered at "
            f"{opened['images_per_s']:.1f}/s, p50/p95/p99 {opened['p50_ms']:.0f}/{opened['p95_ms']:.0f}/"
            f"{opened['p99_ms']:.0f} ms; {opened['refused_503']} refused (503); "
            f"slowest answer {opened['max_ms']:.0f} ms"
        )


def main() -> None:
    args = parse_args()
    quiet_tensorflow()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report:
        results = json.loads(args.report.read_text())
        report(results)
        for path in plot(results, args.out, args.name):
            print(f"wrote {path}")
        return
    model_dir = args.model_dir or REPO / "models" / "colorizer"
    raw = RawModel(model_dir, args.max_batch)
    load = os.getloadavg()
    results: dict = {
        "machine": args.machine or f"{platform.node()}: {os.cpu_count()} CPUs, {platform.machine()}",
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "load_average_at_start": load,
        "model": model_dir.name,
        "max_batch": args.max_batch,
        "clients": args.clients,
    }
    service = Service(model_dir, args)
    try:
        if "ratios" not in args.skip:
            results["ratios"] = [measure_ratios(raw, service, side, args) for side in args.sizes]
            results["mean_batch"] = service.mean_batch_size()
        if "stages" not in args.skip:
            results["stages"] = [measure_stages(raw, service, mpx, max(4, round(2 / mpx))) for mpx in args.stage_mpx]
        if "load" not in args.skip:
            results["load"] = measure_load(service, args)
    finally:
        service.stop()
    results["load_average_at_end"] = os.getloadavg()
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=1) + "\n")
    report(results)
    for path in plot(results, args.out, args.name):
        print(f"wrote {path}")
    print(f"load average (1 min) at start {load[0]:.1f}, at end {results['load_average_at_end'][0]:.1f}")


if __name__ == "__main__":
    main()
