"""The service's configuration: one typed class, read from ``COLORIZER_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from colorizer_core.imaging import DEFAULT_PNG_COMPRESS_LEVEL, MIN_RENDER_SIZE

# The repository's models/colorizer folder; installed copies (the Docker image) set COLORIZER_MODEL_DIR.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "colorizer"

BYTES_PER_MB = 1024 * 1024
# A guessable admin token is no lock: shorter ones are refused at start (`openssl rand -hex 32` makes 64).
ADMIN_TOKEN_MIN_CHARS = 32


class Settings(BaseSettings):
    """Everything the service can be told; each field is ``COLORIZER_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="COLORIZER_")

    model_dir: Path = Field(
        DEFAULT_MODEL_DIR, description="A root of numbered versions (the highest is served) or one version folder."
    )
    host: str = Field("127.0.0.1", description="Address colorize-serve listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port colorize-serve listens on.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    max_batch: int = Field(16, ge=1, le=1024, description="Most images in one model call.")
    max_delay_ms: float = Field(
        5.0,
        ge=0,
        description="Longest an image waits for others, already being decoded, to share its model call "
        "(it waits only when they are expected in time to fill a larger batch).",
    )
    max_queue: int = Field(64, ge=1, description="Most images waiting for the model; beyond it requests get 503.")
    retry_after_s: int = Field(1, ge=1, description="The Retry-After sent with 503 answers.")

    max_upload_mb: float = Field(20.0, gt=0, description="Largest request body, in MiB.")
    max_pixels: int = Field(40_000_000, ge=1, description="Largest image, in pixels (width x height).")
    max_batch_files: int = Field(32, ge=1, description="Most files in one /colorize/batch request.")
    max_render_size: int = Field(
        768,
        ge=MIN_RENDER_SIZE,
        description="Largest render_size a request may ask for; a batch's memory grows with its square.",
    )

    codec_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Threads that decode uploads, merge colour and encode answers at once (default: one per "
        "CPU core); more requests than this wait their turn without holding memory for pixels.",
    )
    png_compress_level: int = Field(
        DEFAULT_PNG_COMPRESS_LEVEL,
        ge=0,
        le=9,
        description="Deflate level of PNG answers, as zlib counts them: 0 stores (largest), 9 compresses most "
        "(slowest). 1 to 3 use ISA-L's deflate, several times as fast as zlib's for about the same size.",
    )
    memory_budget_mb: float = Field(
        4096.0,
        gt=0,
        description="Memory, in MiB, that all requests in flight together may hold (bodies, decoded photos, "
        "model inputs, results); past it: 503 with Retry-After, or 413 for a photo that could never fit. "
        "The default suits a 24 GiB machine; the process needs its model and runtime besides.",
    )
    job_timeout_s: float = Field(
        120.0, gt=0, description="Longest a request's photos may take, from decode to encoded answer; then 503."
    )
    shutdown_grace_s: float = Field(
        20.0, ge=0, description="On shutdown, how long requests in flight may take to finish before they are cut."
    )

    reload_interval_s: float = Field(
        0.0, ge=0, description="Seconds between checks for a newer model version; 0 turns the watch off."
    )
    admin_token: SecretStr | None = Field(
        None,
        min_length=ADMIN_TOKEN_MIN_CHARS,
        description="Bearer token for the control plane (POST /v1/model/reload, GET /v1/model); "
        f"at least {ADMIN_TOKEN_MIN_CHARS} characters. Unset: reload is off (403) and /v1/model is open.",
    )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * BYTES_PER_MB)

    @property
    def memory_budget_bytes(self) -> int:
        return int(self.memory_budget_mb * BYTES_PER_MB)
