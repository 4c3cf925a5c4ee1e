"""The NDJSON reader of the file door: chunks of lines, never the whole input.

A line longer than the limit is cut there and the rest skipped, so a file of any size
ingests in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from flywheel._core.errors import InputError

CHUNK_LINES = 50_000  # as Ingestor.ingest: fewer, bigger commits (files) per file
CHUNK_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LineChunk:
    """Consecutive non-blank lines: as received (for bad rows) and parsed."""

    raws: list[bytes]
    items: list[Any]
    lines: list[int]
    """1-based line number of each item in the input."""
    position: int
    """Bytes consumed from the start of the input, up to the end of this chunk."""


def ndjson_chunks(stream: IO[bytes], *, max_line_bytes: int, chunk_lines: int | None = None,
                  chunk_bytes: int | None = None) -> Iterator[LineChunk]:
    """Chunks of lines. A line longer than `max_line_bytes` is cut there (the rest is
    skipped, never held) and goes on as an event too large for any limit."""
    chunk_lines = chunk_lines or CHUNK_LINES
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    raws: list[bytes] = []
    lines: list[int] = []
    cut: set[int] = set()
    size = position = number = 0
    checked = False
    while True:
        line = stream.readline(max_line_bytes)
        if not line:
            break
        number += 1
        position += len(line)
        if len(line) >= max_line_bytes and not line.endswith(b"\n"):
            position += _skip_line(stream)
            cut.add(len(raws))
        body = _strip_terminator(line, first=number == 1)
        if not body.strip():
            continue
        if not checked:
            _check_first_line(body)
            checked = True
        raws.append(body)
        lines.append(number)
        size += len(body)
        if len(raws) >= chunk_lines or size >= chunk_bytes:
            yield LineChunk(raws, _decode(raws, cut), lines, position)
            raws, lines, cut, size = [], [], set(), 0
    if raws:
        yield LineChunk(raws, _decode(raws, cut), lines, position)


def _strip_terminator(line: bytes, *, first: bool) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line.removeprefix(b"\xef\xbb\xbf") if first else line


def _skip_line(stream: IO[bytes]) -> int:
    skipped = 0
    while True:
        piece = stream.readline(1 << 20)
        skipped += len(piece)
        if not piece or piece.endswith(b"\n"):
            return skipped


def _check_first_line(body: bytes) -> None:
    start = body.strip()
    if start.startswith(b"[") or start == b"{":
        shape = "a JSON array" if start.startswith(b"[") else "pretty-printed JSON"
        raise InputError(f"the input looks like {shape}, not NDJSON (one event per line)",
                         hint="convert it first, e.g. "
                         "`jq -c '.[]' events.json | flywheel ingest -`")


def _decode(raws: list[bytes], cut: set[int]) -> list[Any]:
    from flywheel.ingest.prepare import NotJson, decode_json_items

    try:
        items = decode_json_items(raws)
    except UnicodeDecodeError:
        # msgspec raises this (not DecodeError) on invalid UTF-8: parse line by line.
        items = []
        for raw in raws:
            try:
                items.extend(decode_json_items([raw]))
            except UnicodeDecodeError as exc:
                items.append(NotJson(f"not valid UTF-8: {exc.reason} at byte {exc.start}"))
    for position in cut:
        # Not NotJson: a cut line must be rejected as too large, which the size check
        # (run before any look at the content) does for any other item.
        items[position] = None
    return items
