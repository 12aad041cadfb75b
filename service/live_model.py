"""The model being served, and how a newer version replaces it.

A reload tries the versions under the model folder newest first, down to the one being served: it
loads each in a thread while the old model keeps serving, runs a probe (the output's shape, dtype
and range on a known input), and swaps in the first that passes, warmed up. A version that fails is
skipped, never served; one still being copied (files missing) is skipped too and tried again on the
next reload or watch tick. Requests already accepted hold the model they started with, so they
finish on it.

What is reported about skipped versions (``skipped``, error answers) names no path and carries no
exception text, which may hold paths: the log has those.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from colorizer_core import contract
from colorizer_core.inference import LoadedModel, UnusableModel, load_model

log = logging.getLogger(__name__)


class ModelNotReady(RuntimeError):
    """No model has been loaded yet (still starting, or no version could be loaded)."""


class ReloadFailed(RuntimeError):
    """No version could be loaded and none was being served."""


@dataclass(frozen=True)
class SkippedVersion:
    version: int
    reason: str  # for clients: no path, no exception text


@dataclass(frozen=True)
class ReloadResult:
    previous_version: int | None
    version: int
    changed: bool
    skipped: tuple[SkippedVersion, ...]


Fingerprint = tuple[tuple[str, int, int], ...]


class LiveModel:
    """Holds the served model; ``reload`` swaps in the newest version under ``model_dir`` that works."""

    def __init__(
        self,
        model_dir: Path,
        *,
        warm_up_sizes: tuple[int, ...],
        on_swap: Callable[[LoadedModel], None] | None = None,
    ) -> None:
        self.model_dir = model_dir
        self._warm_up_sizes = warm_up_sizes
        self._on_swap = on_swap
        self._model: LoadedModel | None = None
        self._reloading = asyncio.Lock()
        self._failed: dict[Path, Fingerprint] = {}  # complete versions that failed, as they were then
        self.skipped: tuple[SkippedVersion, ...] = ()  # what the last reload passed over

    @property
    def current(self) -> LoadedModel:
        if self._model is None:
            raise ModelNotReady(_summary(self.skipped) if self.skipped else "The model is still loading.")
        return self._model

    async def reload(self) -> ReloadResult:
        """Serve the newest version that loads and passes the probe, unless the served one is newer."""
        async with self._reloading:
            previous = self._model
            skipped = []
            for version_dir in contract.candidate_dirs(self.model_dir):
                if previous is not None and version_dir == previous.path:
                    break
                version = contract.version_of(version_dir)
                if missing := contract.missing_files(version_dir):
                    skipped.append(SkippedVersion(version, f"incomplete, tried again later: no {', '.join(missing)}"))
                    continue
                try:
                    model = await anyio.to_thread.run_sync(self._load_and_check, version_dir)
                except Exception as error:
                    log.error("Skipping model version %d in %s: %s", version, version_dir, error)
                    self._failed[version_dir] = _fingerprint(version_dir)
                    skipped.append(SkippedVersion(version, _reason(error)))
                    continue
                self._swap(model)
                break
            self.skipped = tuple(skipped)
            if self._model is None:
                raise ReloadFailed(_summary(self.skipped) if skipped else "No model version under the model folder.")
            current = self._model
            return ReloadResult(
                previous.version if previous else None, current.version, current is not previous, self.skipped
            )

    async def watch(self, interval_s: float) -> None:
        """Every ``interval_s``, reload if a version newer than the served one is new, changed, or incomplete."""
        while True:
            await anyio.sleep(interval_s)
            if not self._worth_a_reload():
                continue
            try:
                await self.reload()
            except ReloadFailed as error:
                log.error("%s", error)

    def _worth_a_reload(self) -> bool:
        served = self._model.path if self._model else None
        for version_dir in contract.candidate_dirs(self.model_dir):
            if version_dir == served:
                return False
            if self._failed.get(version_dir) != _fingerprint(version_dir):
                return True
        return False

    def _load_and_check(self, path: Path) -> LoadedModel:
        model = load_model(path)
        model.probe()
        model.warm_up(self._warm_up_sizes)
        return model

    def _swap(self, model: LoadedModel) -> None:
        self._model = model
        self._failed.pop(model.path, None)
        if self._on_swap is not None:
            self._on_swap(model)
        log.info("Serving model version %d from %s", model.version, model.path)


def _reason(error: Exception) -> str:
    if isinstance(error, UnusableModel):
        return str(error)
    return f"could not be loaded ({type(error).__name__}; the service log has the details)"


def _summary(skipped: tuple[SkippedVersion, ...]) -> str:
    return "No model version could be served: " + "; ".join(f"{s.version}: {s.reason}" for s in skipped) + "."


def _fingerprint(version_dir: Path) -> Fingerprint:
    """Each file's name, size and modification time: a version that fails is tried again once it changes."""
    try:
        return tuple(
            sorted(
                (str(file.relative_to(version_dir)), stat.st_size, stat.st_mtime_ns)
                for file in version_dir.rglob("*")
                if file.is_file() and (stat := file.stat())
            )
        )
    except OSError:  # changing under our feet: not the fingerprint of the version that failed
        return ()
