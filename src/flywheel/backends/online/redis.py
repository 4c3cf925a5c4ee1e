"""The Redis online store: one hash per view, field = entity key, value = msgpack record."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.commands.core import Script

from flywheel._core.errors import BackendError, ConfigError
from flywheel._core.online import OnlineRow, OnlineValue
from flywheel.backends.online import _codec

DEFAULT_PREFIX = "flywheel:online:"
CONNECT_TIMEOUT_S = 5.0
SCRIPT_BATCH = 1_000
"""Rows per script call: a Lua script blocks the server, so a huge put is split in chunks."""

# KEYS[1]: the view's hash; ARGV: field, event_time_us, record, field, ... A row is written
# unless the stored record is newer; rows are applied in order, so within one batch the
# newest (or, on a tie, the last) row wins. Returns the number of rows written.
_PUT_LUA = """
local written = 0
for i = 1, #ARGV, 3 do
    local current = redis.call('HGET', KEYS[1], ARGV[i])
    if (not current) or cmsgpack.unpack(current)['event_time_us'] <= tonumber(ARGV[i + 1]) then
        redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
        written = written + 1
    end
end
return written
"""


def split_url(url: str) -> tuple[str, str]:
    """The redis-py URL and the key prefix of `redis://host:port/db?prefix=...`."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError(f"online store URL scheme {parts.scheme!r} is not redis://")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((value for name, value in query if name == "prefix"), DEFAULT_PREFIX)
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def shown_url(url: str) -> str:
    """`url` without credentials or query, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisOnlineStore:
    """Online store in Redis; every call is one round trip (a huge put is pipelined)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client_url, self._prefix = split_url(url)
        self._client: redis.Redis | None = None
        self._script: Script | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[Any] = []

    def put(self, view: str, rows: Sequence[OnlineRow]) -> int:
        args: list[str | int | bytes] = []
        for row in rows:
            micros = _codec.to_micros(row.event_time)
            args += [row.key, micros, _codec.encode_record(row.values, micros)]
        if not args:
            return 0
        chunks = [args[i:i + 3 * SCRIPT_BATCH] for i in range(0, len(args), 3 * SCRIPT_BATCH)]
        keys = [self._view_key(view)]
        with self._errors():
            client, script = self._connect()
            if len(chunks) == 1:
                # A direct EVALSHA is one round trip; a pipeline would first ask SCRIPT EXISTS.
                return int(script(keys=keys, args=chunks[0], client=client))
            pipe = client.pipeline(transaction=False)
            for chunk in chunks:
                script(keys=keys, args=chunk, client=pipe)
            return sum(int(n) for n in pipe.execute())

    def get(self, requests: Sequence[tuple[str, Sequence[str]]]
            ) -> list[list[OnlineValue | None]]:
        asked = [(view, list(keys)) for view, keys in requests if keys]
        if not asked:
            return [[None] * len(keys) for _, keys in requests]
        commands = [("HMGET", self._view_key(view), *keys) for view, keys in asked]
        with self._errors():
            try:
                replies = self._send(commands)
            except (redis.ConnectionError, redis.TimeoutError):
                replies = self._send(commands)  # a read is safe to repeat once, reconnected
        answers = iter(replies)
        return [[_value(blob) for blob in next(answers)] if keys else []
                for _, keys in requests]

    def _send(self, commands: list[tuple[str, ...]]) -> list[list[bytes | None]]:
        """Every command in one write and the replies in order, on this thread's own
        connection: a pool checkout and a pipeline object per read cost more than the
        round trip itself."""
        conn = self._reader()
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            return [conn.read_response() for _ in commands]
        except BaseException:
            conn.disconnect()  # unread replies would answer the next request: start afresh
            raise

    def _reader(self) -> Any:
        # Any: redis-py's connection methods are untyped.
        conn: Any = getattr(self._local, "conn", None)
        if conn is None:
            client, _ = self._connect()
            conn = client.connection_pool.make_connection()
            with self._lock:
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    def drop(self, view: str) -> None:
        with self._errors():
            client, _ = self._connect()
            client.unlink(self._view_key(view))  # the memory is freed in the background

    def close(self) -> None:
        with self._lock:
            client, self._client, self._script = self._client, None, None
            readers, self._readers = self._readers, []
            self._local = threading.local()
        for conn in readers:
            conn.disconnect()
        if client is not None:
            client.close()

    def _view_key(self, view: str) -> str:
        return f"{self._prefix}{view}"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            detail = " ".join(str(exc).split())
            raise BackendError(
                f"online store {shown_url(self._client_url)} failed: {detail}"
            ) from exc

    def _connect(self) -> tuple[redis.Redis, Script]:
        with self._lock:
            if self._client is None or self._script is None:
                # from_url only builds a connection pool: nothing connects until a command.
                self._client = redis.Redis.from_url(
                    self._client_url, socket_connect_timeout=CONNECT_TIMEOUT_S
                )
                self._script = self._client.register_script(_PUT_LUA)
            return self._client, self._script


def _value(blob: bytes | None) -> OnlineValue | None:
    if blob is None:
        return None
    record = _codec.decode_record(blob)
    return OnlineValue(record.values, _codec.from_micros(record.event_time_us))


