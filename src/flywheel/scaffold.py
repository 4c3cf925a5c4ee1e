"""`flywheel init`: a project folder a new user understands at a glance."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

from flywheel._core.errors import InputError
from flywheel.config import CONFIG_FILE, STATE_DIR

_CONFIG = """\
# Flywheel project settings. Every backend is a URL: change the URL, not the code.
name: {name}

# Where tables live (the event log, bad rows, derived tables): a folder, relative to
# this file, or an object-store URL such as s3://bucket/prefix.
storage: data

# Runs, registry, schemas and offsets. SQLite by default; for a team, PostgreSQL:
#   metadata: postgresql://user@host:5432/flywheel
metadata: sqlite:///{state}/metadata.db

# The online feature store, read when serving: SQLite here, Redis for a team:
#   online: redis://localhost:6379/0
online: sqlite:///{state}/online.db

# Artifacts (models, pipeline step outputs), stored by sha256: a folder, relative to
# this file.
artifacts: artifacts

server:
  host: 127.0.0.1   # on any other address the server requires tokens
  port: 8000

ingest:
  max_event_bytes: 65536      # larger events are kept as bad rows (reason too_large)
  max_future_seconds: 86400   # event_time may be at most this far ahead of the clock

alerts:
  bad_rows:
    window_seconds: 300
    threshold: 0.05           # alert when more than 5% of inputs are rejected
    min_events: 100
    # webhook: https://hooks.example.com/flywheel
    # command: ./notify.sh
"""

_README = """\
# {name}

A Flywheel project.

| path | what it holds |
|---|---|
| `flywheel.yaml` | backends (as URLs) and settings |
| `schemas/` | event schemas: `schemas/{{vendor}}/{{name}}/jsonschema/{{MAJOR-MINOR-PATCH}}` |
| `data/` | the event log and derived tables (created on first write; not for git) |
| `artifacts/` | models and pipeline outputs, stored by sha256 (created on first write) |
| `.flywheel/` | local state: the metadata database and caches (not for git) |

Try it:

```bash
flywheel apply                                  # check and register the schemas
echo '{example}' | flywheel ingest -            # send one event
flywheel log stats                              # what the log holds
flywheel log tail com.example/page_view         # the latest events
flywheel serve                                  # HTTP collector on 127.0.0.1:8000
```

Schemas are immutable once registered: to change one, add a new version. Adding optional
properties is a MINOR bump (1-1-0); removing or retyping a property needs a new MAJOR (2-0-0).
"""

EXAMPLE_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "self": {"vendor": "com.example", "name": "page_view", "format": "jsonschema",
             "version": "1-0-0"},
    "description": "A page was shown to a user.",
    "type": "object",
    "properties": {
        "user_id": {"type": "string", "maxLength": 128},
        "url": {"type": "string", "maxLength": 4096},
        "referrer": {"type": ["string", "null"], "maxLength": 4096},
    },
    "required": ["user_id", "url"],
    "additionalProperties": False,
}

_EXAMPLE_EVENT = ('{"schema": "iglu:com.example/page_view/jsonschema/1-0-0", '
                  '"data": {"user_id": "u1", "url": "https://example.com/"}}')


EXAMPLES = ("shop",)
"""Example projects shipped in the package (`flywheel/examples/NAME`), for `--example`."""


def init_project(directory: Path, *, name: str | None = None,
                 example: str | None = None) -> Path:
    """Create a project in `directory` (which may exist, but must not hold a project);
    `example` copies one of `EXAMPLES` instead of the single example schema."""
    if example is not None and example not in EXAMPLES:
        raise InputError(f"no example {example!r}; examples: {', '.join(EXAMPLES)}")
    directory = directory.resolve()
    if (directory / CONFIG_FILE).exists():
        raise InputError(f"{directory} already holds a Flywheel project ({CONFIG_FILE} exists)")
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} exists and is not a folder")
    name = name or directory.name or "flywheel-project"
    if example is not None:
        return _copy_example(example, directory, name)
    schema_dir = directory / "schemas" / "com.example" / "page_view" / "jsonschema"
    schema_dir.mkdir(parents=True, exist_ok=True)
    (schema_dir / "1-0-0").write_text(json.dumps(EXAMPLE_SCHEMA, indent=2) + "\n")
    (directory / CONFIG_FILE).write_text(_CONFIG.format(name=name, state=STATE_DIR))
    readme = directory / "README.md"
    if not readme.exists():
        readme.write_text(_README.format(name=name, example=_EXAMPLE_EVENT))
    (directory / ".gitignore").write_text(f"/data/\n/artifacts/\n/{STATE_DIR}/\n")
    return directory


def example_files(example: str) -> list[str]:
    """The files of a shipped example, as paths relative to its folder (flywheel.yaml is
    written from the template above, with the project's name)."""
    root = Path(str(resources.files("flywheel.examples") / example))
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.name != CONFIG_FILE)


def _copy_example(example: str, directory: Path, name: str) -> Path:
    root = Path(str(resources.files("flywheel.examples") / example))
    files = example_files(example)
    clash = [f for f in files if f != "README.md" and (directory / f).exists()]
    if clash:
        raise InputError(f"{directory / clash[0]} exists; the {example} example would "
                         "overwrite it", hint="start from an empty folder")
    for relative in files:
        target = directory / relative
        if relative == "README.md" and target.exists():
            continue  # the user's README stays, as for a plain `init`
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / relative, target)
    (directory / CONFIG_FILE).write_text(_CONFIG.format(name=name, state=STATE_DIR))
    (directory / ".gitignore").write_text(f"/data/\n/artifacts/\n/{STATE_DIR}/\n")
    return directory
