"""Schemathesis, run against the live server from its own OpenAPI schema, finds no 5xx answer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from service_testing import LiveServer

MAX_EXAMPLES = 20
SCHEMATHESIS_TIMEOUT_S = 300
SEED = "20240601"  # the same cases every run


def test_generated_requests_never_get_a_server_error(server: LiveServer, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json"]
    command += ["--checks", "not_a_server_error", "--max-examples", str(MAX_EXAMPLES)]
    command += ["--workers", "1", "--seed", SEED]
    # Run in tmp_path: schemathesis keeps its example database in the working directory.
    outcome = subprocess.run(command, capture_output=True, text=True, timeout=SCHEMATHESIS_TIMEOUT_S, cwd=tmp_path)
    assert outcome.returncode == 0, outcome.stdout[-5000:] + outcome.stderr[-2000:]
