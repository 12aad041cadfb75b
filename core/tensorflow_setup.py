"""TensorFlow start-up: quiet by default, and one line of ours that says where the model runs.

Imported TensorFlow prints its C++ notices (oneDNN, CPU instructions, ``failed call to cuInit`` on
a machine without a GPU) before anything of ours: on a run that works, a new user reads an error.
Set ``TF_CPP_MIN_LOG_LEVEL`` (0 shows everything) to see them again.
"""

from __future__ import annotations

import contextlib
import os
import sys

QUIET_LEVEL = "3"  # TensorFlow's C++ log level that hides INFO, WARNING and ERROR lines


def quiet_tensorflow() -> None:
    """Import TensorFlow without its C++ start-up chatter, unless the user asked for it.

    Call it in an entry point before anything imports TensorFlow. Some lines (``cudart_stub``)
    are written before TensorFlow reads its log level, so the import runs with stderr closed.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_LEVEL
    with _stderr_discarded():
        import tensorflow  # noqa: F401


def device_summary() -> str:
    """Where TensorFlow runs models here, in a few words: ``"GPU (2: ...)"`` or ``"CPU (no GPU found)"``."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU (no GPU found)"
    names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    return f"GPU ({len(gpus)}: {', '.join(names)})"


@contextlib.contextmanager
def _stderr_discarded():
    """Send file descriptor 2 to /dev/null for the block: C++ writes there, not to ``sys.stderr``."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
