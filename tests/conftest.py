"""Fixtures shared by the service and trainer tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from tiny_models import make_model_dir

# The tests share a small machine with training jobs: keep TensorFlow to few threads and quiet.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def tiny_model_dir(tmp_path: Path) -> Callable[..., Path]:
    """A factory: ``tiny_model_dir(tint=(1.0, 0.8, 0.6), size=32, version=1)`` exports and returns a version."""
    return partial(make_model_dir, tmp_path)
