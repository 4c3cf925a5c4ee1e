"""The models deployments serve, loaded through the registry and kept current.

A watcher polls the registry's aliases (one small query) about once a second. When a URI
points at another version, the new version is loaded and checked beside the old one and
then swapped in with one assignment: requests in flight keep the scorer they took, new
ones take the new scorer, and no request waits for a load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from flywheel._core.text import first_line
from flywheel.registry import ModelRegistry, ModelUri
from flywheel.serving.scorer import Scorer

__all__ = ["ModelPool"]

log = logging.getLogger("flywheel.serving")


class ModelPool:
    """URI -> the `Scorer` of the version it points at now."""

    def __init__(self, *, registry: ModelRegistry, poll_seconds: float = 1.0) -> None:
        self._registry = registry
        self._poll_seconds = poll_seconds
        self._scorers: dict[ModelUri, Scorer] = {}
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._listeners: list[Callable[[ModelUri, Scorer], None]] = []

    def scorer(self, uri: ModelUri) -> Scorer:
        """The scorer `uri` names now (loaded on first use, then kept current)."""
        found = self._scorers.get(uri)
        if found is not None:
            return found
        with self._load_lock:
            found = self._scorers.get(uri)
            if found is None:
                found = Scorer(loaded=self._registry.load(uri))
                self._scorers[uri] = found
        self._start_watching()
        return found

    def load(self, uris: Iterable[ModelUri]) -> None:
        for uri in uris:
            self.scorer(uri)

    def on_swap(self, listener: Callable[[ModelUri, Scorer], None]) -> None:
        self._listeners.append(listener)

    def refresh(self) -> list[ModelUri]:
        """Load and swap in every URI that points at another version now; returns them.
        A version that cannot be loaded is logged and the old one keeps serving."""
        uris = list(self._scorers)
        aliases = self._registry.alias_versions({u.name for u in uris if u.alias})
        moved = []
        for uri in uris:
            current = self._scorers[uri]
            target = self._target(uri, aliases)
            if target is None or target == current.version:
                continue
            try:
                fresh = Scorer(loaded=self._registry.load(ModelUri(uri.name, version=target)))
            except Exception as exc:
                log.error("cannot load %s version %s (the old version keeps serving): %s",
                          uri, target, first_line(exc))
                continue
            self._scorers[uri] = fresh  # one assignment: readers see old or new, never none
            moved.append(uri)
            log.info("%s moved from version %s to %s", uri, current.version, target)
            for listener in self._listeners:
                listener(uri, fresh)
        return moved

    def _target(self, uri: ModelUri, aliases: dict[tuple[str, str], int]) -> int | None:
        if uri.alias is not None:
            return aliases.get((uri.name, uri.alias))  # a removed alias: keep serving
        if uri.version is not None:
            return uri.version
        return self._registry.newest_version(uri.name)

    def _start_watching(self) -> None:
        with self._load_lock:
            if self._watcher is None and not self._stop.is_set():
                self._watcher = threading.Thread(target=self._watch, daemon=True,
                                                 name="flywheel-model-watcher")
                self._watcher.start()

    def _watch(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.refresh()
            except Exception as exc:  # the metadata store is away: try again next time
                log.warning("cannot check the model aliases: %s", first_line(exc))

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
