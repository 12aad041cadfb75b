"""The model being served, and how a newer version replaces it.

A reload loads and warms the new version in a thread while the old one keeps serving, then swaps
one reference. Requests already accepted hold the model they started with, so they finish on it; a
version that fails to load leaves the old model serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from service import contract
from service.model import LoadedModel, load_model

log = logging.getLogger(__name__)


class ModelNotReady(RuntimeError):
    """No model has been loaded yet (still starting, or no version could be loaded)."""


class ReloadFailed(RuntimeError):
    """The newest version could not be loaded; the previous model, if any, still serves."""


@dataclass(frozen=True)
class ReloadResult:
    previous_version: int | None
    version: int
    changed: bool


class LiveModel:
    """Holds the served model; ``reload`` swaps in the highest version under ``model_dir``."""

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
        self._failed_dir: Path | None = None
        self.last_error: str | None = None

    @property
    def current(self) -> LoadedModel:
        if self._model is None:
            raise ModelNotReady(self.last_error or "The model is still loading.")
        return self._model

    async def reload(self) -> ReloadResult:
        """Load the highest version now under ``model_dir`` unless it is the one being served."""
        async with self._reloading:
            previous = self._model
            previous_version = previous.version if previous else None
            try:
                target = contract.resolve_model_dir(self.model_dir)
            except FileNotFoundError as error:
                raise self._failure(str(error), previous) from None
            if previous is not None and target == previous.path:
                self._failed_dir, self.last_error = None, None
                return ReloadResult(previous_version, previous.version, changed=False)
            try:
                model = await anyio.to_thread.run_sync(self._load_and_warm, target)
            except Exception as error:
                self._failed_dir = target
                raise self._failure(f"Could not load the model in {target}: {error}", previous) from error
            self._model = model  # the swap
            self._failed_dir = None
            self.last_error = None
            if self._on_swap is not None:
                self._on_swap(model)
            log.info("Serving model version %d from %s", model.version, model.path)
            return ReloadResult(previous_version, model.version, changed=True)

    async def watch(self, interval_s: float) -> None:
        """Every ``interval_s``, reload if a version other than the served (or last failed) one is newest."""
        while True:
            await anyio.sleep(interval_s)
            try:
                newest = contract.resolve_model_dir(self.model_dir)
            except FileNotFoundError:
                continue
            served = self._model.path if self._model else None
            if newest in (served, self._failed_dir):
                continue
            try:
                await self.reload()
            except ReloadFailed as error:
                log.error("%s", error)

    def _load_and_warm(self, path: Path) -> LoadedModel:
        model = load_model(path)
        model.warm_up(self._warm_up_sizes)
        return model

    def _failure(self, message: str, previous: LoadedModel | None) -> ReloadFailed:
        if previous is not None:
            message += f" Still serving version {previous.version}."
        self.last_error = message
        return ReloadFailed(message)
