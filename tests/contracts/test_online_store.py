"""The `OnlineStore` contract, run against every online backend on a real service."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flywheel._core.errors import BackendError
from flywheel._core.online import OnlineRow, OnlineStore, OnlineValue
from flywheel.backends.online.redis import RedisOnlineStore
from flywheel.backends.online.sqlite import SqliteOnlineStore

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def row(key: str, seconds: float = 0, **values: Any) -> OnlineRow:
    return OnlineRow(key=key, values=values, event_time=at(seconds))


def values_of(found: list[OnlineValue | None]) -> list[dict[str, Any] | None]:
    return [None if value is None else value.values for value in found]


class OnlineStoreContract:
    """Every online backend passes these; subclasses provide the fixtures below."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def unreachable_url(self) -> str:
        raise NotImplementedError

    def open(self, url: str) -> OnlineStore:
        raise NotImplementedError

    @pytest.fixture
    def store(self, url: str) -> Iterator[OnlineStore]:
        store = self.open(url)
        yield store
        store.close()

    def test_roundtrip_of_several_views_in_one_get(self, store: OnlineStore) -> None:
        assert store.put("users", [row("u1", 0, age=31), row("u2", 1, age=42)]) == 2
        assert store.put("carts", [row("u1", 2, items=3)]) == 1

        found = store.get([("users", ["u2", "u1"]), ("carts", ["u1"]), ("users", ["u1"])])

        assert [values_of(f) for f in found] == [
            [{"age": 42}, {"age": 31}],
            [{"items": 3}],
            [{"age": 31}],
        ]
        first = found[0][0]
        assert first is not None and first.event_time == at(1)
        assert first.event_time.tzinfo is not None
        assert first.event_time.utcoffset() == dt.timedelta(0)

    def test_unknown_keys_and_views_give_none_in_request_order(self, store: OnlineStore) -> None:
        store.put("users", [row("b", 0, n=2), row("a", 0, n=1), row("d", 0, n=4)])

        found = store.get([("users", ["d", "x", "a", "b", "x"]), ("nope", ["a"]), ("users", [])])

        assert values_of(found[0]) == [{"n": 4}, None, {"n": 1}, {"n": 2}, None]
        assert found[1:] == [[None], []]
        assert store.get([]) == []
        assert store.get([("users", [])]) == [[]]

    def test_keys_are_not_shared_between_views(self, store: OnlineStore) -> None:
        store.put("a", [row("k", 0, v="a")])
        store.put("b", [row("k", 0, v="b")])
        assert [values_of(f) for f in store.get([("a", ["k"]), ("b", ["k"])])] == [
            [{"v": "a"}], [{"v": "b"}]
        ]

    def test_newer_event_time_wins_and_older_put_is_ignored(self, store: OnlineStore) -> None:
        assert store.put("users", [row("u1", 10, age=1), row("u2", 10, age=1)]) == 2
        assert store.put("users", [row("u1", 5, age=2), row("u2", 20, age=3)]) == 1

        (found,) = store.get([("users", ["u1", "u2"])])

        assert values_of(found) == [{"age": 1}, {"age": 3}]
        assert [v.event_time for v in found if v] == [at(10), at(20)]

    def test_newest_row_wins_within_one_batch(self, store: OnlineStore) -> None:
        store.put("users", [row("u1", 3, v=3), row("u1", 9, v=9), row("u1", 1, v=1),
                            row("u2", 1, v=1), row("u2", 2, v=2)])
        (found,) = store.get([("users", ["u1", "u2"])])
        assert values_of(found) == [{"v": 9}, {"v": 2}]
        assert [v.event_time for v in found if v] == [at(9), at(2)]

    def test_equal_event_time_takes_the_later_put(self, store: OnlineStore) -> None:
        store.put("users", [row("u1", 0, v="first")])
        store.put("users", [row("u1", 0, v="second")])
        assert values_of(store.get([("users", ["u1"])])[0]) == [{"v": "second"}]

    def test_event_time_keeps_microseconds_and_normalises_to_utc(
        self, store: OnlineStore
    ) -> None:
        paris = dt.timezone(dt.timedelta(hours=2))
        local = dt.datetime(2024, 1, 2, 5, 4, 5, 999999, tzinfo=paris)
        old = dt.datetime(1960, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC)  # before the epoch
        store.put("v", [OnlineRow("k1", {"x": 1}, local), OnlineRow("k2", {"x": 2}, old)])

        (found,) = store.get([("v", ["k1", "k2"])])

        assert [v.event_time for v in found if v] == [local, old]
        assert all(v is not None and v.event_time.tzinfo == dt.UTC for v in found)
        assert found[0] is not None and found[0].event_time.hour == 3

    def test_every_json_like_value_survives(self, store: OnlineStore) -> None:
        values: dict[str, Any] = {
            "none": None,
            "true": True,
            "false": False,
            "zero": 0,
            "int": -(2**62),
            "big": 2**63 - 1,
            "float": 0.1,
            "whole_float": 2.0,
            "neg_float": -1.5e300,
            "empty": "",
            "unicode": "naïve — 日本 🚀",
            "list": [1, "a", None, 2.5, [True]],
            "empty_list": [],
            "dict": {"a": {"b": [1, {"c": None}]}},
            "empty_dict": {},
        }
        store.put("v", [OnlineRow("k", values, T0)])

        (found,) = store.get([("v", ["k"])])[0]

        assert found is not None
        assert found.values == values
        assert type(found.values["whole_float"]) is float
        assert type(found.values["true"]) is bool
        assert type(found.values["zero"]) is int

    def test_odd_keys_and_view_names(self, store: OnlineStore) -> None:
        keys = ["u1|sku9", "with space", "quote'\"", "*?[glob]", "ключ", "%_like"]
        store.put("view:with*chars", [row(k, 0, k=k) for k in keys])
        (found,) = store.get([("view:with*chars", keys)])
        assert values_of(found) == [{"k": k} for k in keys]
        assert store.get([("view:with", keys)]) == [[None] * len(keys)]

    def test_drop_removes_one_view_only(self, store: OnlineStore) -> None:
        store.put("users", [row("u1", 0, a=1), row("u2", 0, a=2)])
        store.put("users_v2", [row("u1", 0, b=1)])
        store.put("carts", [row("u1", 0, c=1)])

        store.drop("users")
        store.drop("never-written")

        found = store.get([("users", ["u1", "u2"]), ("users_v2", ["u1"]), ("carts", ["u1"])])
        assert [values_of(f) for f in found] == [[None, None], [{"b": 1}], [{"c": 1}]]
        store.put("users", [row("u1", -5, a=3)])  # older than the dropped row: forgotten
        assert values_of(store.get([("users", ["u1"])])[0]) == [{"a": 3}]

    def test_empty_put_writes_nothing(self, store: OnlineStore) -> None:
        assert store.put("users", []) == 0
        assert store.get([("users", ["u1"])]) == [[None]]

    def test_naive_event_time_is_refused(self, store: OnlineStore) -> None:
        with pytest.raises(ValueError, match="timezone"):
            store.put("users", [OnlineRow("u1", {}, dt.datetime(2024, 1, 1))])

    def test_data_outlives_the_store_object(self, store: OnlineStore, url: str) -> None:
        store.put("users", [row("u1", 0, a=1)])
        store.close()
        other = self.open(url)
        try:
            assert values_of(other.get([("users", ["u1"])])[0]) == [{"a": 1}]
        finally:
            other.close()

    def test_concurrent_puts_from_threads_all_land(self, store: OnlineStore) -> None:
        workers, per_worker = 4, 250
        barrier = threading.Barrier(workers)
        errors: list[BaseException] = []

        def write(worker: int) -> None:
            try:
                barrier.wait()
                for start in range(0, per_worker, 25):
                    rows = [row(f"w{worker}-{i}", i, w=worker, i=i)
                            for i in range(start, start + 25)]
                    rows.append(row("shared", worker * 1000 + start, w=worker))
                    store.put("v", rows)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert errors == []
        keys = [f"w{w}-{i}" for w in range(workers) for i in range(per_worker)]
        (found,) = store.get([("v", keys)])
        assert values_of(found) == [{"w": w, "i": i} for w in range(workers)
                                    for i in range(per_worker)]
        (shared,) = store.get([("v", ["shared"])])[0]
        assert shared is not None and shared.values == {"w": workers - 1}  # newest of all

    def test_concurrent_reads_from_threads_get_their_own_answers(
            self, store: OnlineStore) -> None:
        store.put("v", [row(f"k{i}", 0, i=i) for i in range(200)])
        store.put("w", [row(f"k{i}", 0, j=-i) for i in range(200)])
        errors: list[BaseException] = []

        def read(worker: int) -> None:
            try:
                for n in range(100):
                    key = f"k{(worker * 37 + n) % 200}"
                    i = int(key[1:])
                    one, two = store.get([("v", [key]), ("w", [key, "nope"])])
                    assert values_of(one) == [{"i": i}]
                    assert values_of(two) == [{"j": -i}, None]
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=read, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []

    def test_large_batch_roundtrip(self, store: OnlineStore) -> None:
        keys = [f"user-{i:05d}" for i in range(10_000)]
        assert store.put("big", [row(k, 0, n=i, name=k) for i, k in enumerate(keys)]) == 10_000
        assert store.put("big", [row(k, -1, n=-1) for k in keys]) == 0

        (found,) = store.get([("big", [*keys[::-1], "missing"])])

        expected = [{"n": i, "name": k} for i, k in enumerate(keys)]
        assert values_of(found) == [*expected[::-1], None]

    def test_constructor_has_no_side_effects(self, unreachable_url: str) -> None:
        store = self.open(unreachable_url)  # would fail on any connection attempt
        store.close()

    def test_unreachable_backend_raises_backend_error(self, unreachable_url: str) -> None:
        store = self.open(unreachable_url)
        try:
            with pytest.raises(BackendError) as raised:
                store.get([("users", ["u1"])])
            with pytest.raises(BackendError):
                store.put("users", [row("u1")])
            with pytest.raises(BackendError):
                store.drop("users")
        finally:
            store.close()
        line = raised.value.one_line()
        assert "\n" not in line
        assert "secret" not in line


class TestSqliteOnlineStore(OnlineStoreContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/nested/online.db"

    @pytest.fixture
    def unreachable_url(self, tmp_path: Path) -> str:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        return f"sqlite:///{blocker}/online.db"

    def open(self, url: str) -> OnlineStore:
        return SqliteOnlineStore(url)

    def test_constructor_creates_nothing_until_first_use(self, tmp_path: Path) -> None:
        path = tmp_path / "nested" / "online.db"
        store = SqliteOnlineStore(f"sqlite:///{path}")
        store.close()
        assert not path.parent.exists()
        assert store.get([("users", ["u1"])]) == [[None]]
        store.close()
        assert path.is_file()

    def test_uses_write_ahead_logging(self, store: OnlineStore, tmp_path: Path) -> None:
        import sqlite3

        store.put("users", [row("u1")])
        conn = sqlite3.connect(tmp_path / "nested" / "online.db")
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()

    def test_reads_through_a_memory_map_see_what_another_writer_checkpointed(
            self, url: str) -> None:
        import sqlite3

        from flywheel.backends.online.sqlite import MMAP_BYTES, database_path

        reader, writer = SqliteOnlineStore(url), SqliteOnlineStore(url)
        try:
            writer.put("users", [row("u0", 0, n=0)])
            assert values_of(reader.get([("users", ["u0"])])[0]) == [{"n": 0}]
            conn = reader._connection()
            assert conn.execute("PRAGMA mmap_size").fetchone()[0] == MMAP_BYTES
            # The file grows past what the reader mapped, and the pages move from the
            # write-ahead log into the file: the reader sees every new value.
            keys = [f"u{i}" for i in range(5_000)]
            writer.put("users", [row(k, 1, n=i, pad="x" * 200) for i, k in enumerate(keys)])
            check = sqlite3.connect(database_path(url))
            check.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            check.close()
            found = reader.get([("users", keys)])[0]
            assert [v.values["n"] if v else None for v in found] == list(range(5_000))
        finally:
            reader.close()
            writer.close()

    def test_relative_url_resolves_against_cwd(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        store = SqliteOnlineStore("sqlite:///rel/online.db")
        try:
            store.put("users", [row("u1")])
        finally:
            store.close()
        assert (tmp_path / "rel" / "online.db").is_file()


@pytest.mark.redis
class TestRedisOnlineStore(OnlineStoreContract):
    @pytest.fixture
    def url(self, redis_url: str) -> Iterator[str]:
        import redis

        prefix = f"fw_test:{uuid.uuid4().hex[:12]}:"
        sep = "&" if "?" in redis_url else "?"
        yield f"{redis_url}{sep}prefix={prefix}"
        client = redis.Redis.from_url(redis_url)
        try:
            stale = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if stale:
                client.delete(*stale)
        finally:
            client.close()

    @pytest.fixture
    def unreachable_url(self) -> str:
        return "redis://:secret@127.0.0.1:1/0"

    def open(self, url: str) -> OnlineStore:
        return RedisOnlineStore(url)

    def test_keys_live_under_the_prefix(self, store: OnlineStore, url: str,
                                        redis_url: str) -> None:
        import redis

        store.put("users", [row("u1")])
        prefix = url.rsplit("prefix=", 1)[1]
        client = redis.Redis.from_url(redis_url)
        try:
            assert [k.decode() for k in client.scan_iter(match=f"{prefix}*")] == [
                f"{prefix}users"
            ]
        finally:
            client.close()

    def test_a_dropped_connection_is_reopened_for_the_next_read(
            self, url: str, redis_url: str) -> None:
        import redis

        name = f"fw-test-{uuid.uuid4().hex[:8]}"
        store = self.open(f"{url}&client_name={name}")
        client = redis.Redis.from_url(redis_url)
        try:
            store.put("users", [row("u1", 0, a=1)])
            assert values_of(store.get([("users", ["u1"])])[0]) == [{"a": 1}]
            ours = [c["id"] for c in client.client_list() if c.get("name") == name]
            assert ours
            for client_id in ours:
                client.client_kill_filter(_id=client_id)
            assert values_of(store.get([("users", ["u1"])])[0]) == [{"a": 1}]
        finally:
            client.close()
            store.close()

    def test_a_failed_read_leaves_the_connection_in_step(
            self, store: OnlineStore, url: str, redis_url: str) -> None:
        import redis

        store.put("users", [row("u1", 0, a=1)])
        prefix = url.rsplit("prefix=", 1)[1]
        client = redis.Redis.from_url(redis_url)
        try:
            client.set(f"{prefix}broken", "not a hash")
        finally:
            client.close()
        with pytest.raises(BackendError, match="WRONGTYPE"):
            store.get([("broken", ["u1"]), ("users", ["u1"])])
        # The reply left unread must not answer the next request.
        assert values_of(store.get([("users", ["u1"])])[0]) == [{"a": 1}]

    def test_message_names_the_server_without_password(self) -> None:
        store = RedisOnlineStore("redis://user:secret@127.0.0.1:1/3?prefix=x:")
        try:
            with pytest.raises(BackendError, match=r"redis://127\.0\.0\.1:1/3") as raised:
                store.get([("users", ["u1"])])
        finally:
            store.close()
        assert "secret" not in raised.value.one_line()
