"""Backends chosen by URL scheme.

`flywheel.yaml` holds URLs; this registry maps (role, scheme) to a dotted path that is
imported only when a backend of that kind is opened, so optional dependencies stay optional.
Third parties add schemes through the `flywheel.backends` entry-point group, with names of
the form `role.scheme` (for example `metadata.mysql = mypkg.store:MySqlMetadataStore`).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

from flywheel._core.errors import BackendError

_BUILTIN: dict[str, dict[str, str]] = {
    "metadata": {
        "sqlite": "flywheel.backends.metadata.sql:SqlMetadataStore",
        "postgresql": "flywheel.backends.metadata.sql:SqlMetadataStore",
        "postgresql+psycopg": "flywheel.backends.metadata.sql:SqlMetadataStore",
        "postgres": "flywheel.backends.metadata.sql:SqlMetadataStore",
    },
    "online": {
        "sqlite": "flywheel.backends.online.sqlite:SqliteOnlineStore",
        "redis": "flywheel.backends.online.redis:RedisOnlineStore",
    },
    "artifacts": {
        "file": "flywheel.backends.storage.local:LocalBlobBackend",
    },
}

_EXTRA_HINT = {
    "postgresql": "pip install 'flywheel-mlops[postgres]'",
    "postgres": "pip install 'flywheel-mlops[postgres]'",
    "postgresql+psycopg": "pip install 'flywheel-mlops[postgres]'",
    "redis": "pip install 'flywheel-mlops[redis]'",
}


def url_scheme(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    # A bare path (or a Windows drive letter) is a local path.
    return scheme if len(scheme) > 1 else "file"


def _plugin_targets(role: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in entry_points(group="flywheel.backends"):
        entry_role, _, scheme = entry.name.partition(".")
        if entry_role == role and scheme:
            found[scheme] = entry.value
    return found


def is_known_scheme(role: str, scheme: str) -> bool:
    """Whether a backend of `role` is registered for `scheme` (built in, or a plugin)."""
    # The built-in schemes first: listing the entry points takes a noticeable while.
    return scheme in _BUILTIN.get(role, {}) or scheme in _plugin_targets(role)


def schemes(role: str) -> list[str]:
    return sorted({**_BUILTIN.get(role, {}), **_plugin_targets(role)})


def resolve(role: str, url: str) -> type[Any]:
    """The backend class for `url` in `role`, imported on first use."""
    scheme = url_scheme(url)
    targets = {**_BUILTIN.get(role, {}), **_plugin_targets(role)}
    target = targets.get(scheme)
    if target is None:
        known = ", ".join(f"{s}://" for s in sorted(targets)) or "none"
        raise BackendError(
            f"no {role} backend for URL scheme '{scheme}://'",
            hint=f"use one of: {known}",
        )
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = _EXTRA_HINT.get(scheme, "install the package that provides it")
        raise BackendError(
            f"the {role} backend for '{scheme}://' is not installed ({exc.name})", hint=hint
        ) from exc
    backend: type[Any] = getattr(module, attr)
    return backend
