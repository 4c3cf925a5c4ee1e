"""The `ModelStore` contract: versions, aliases and their audit trail, on every backend."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest

from flywheel._core.errors import FlywheelError
from flywheel._core.metadata.models import ModelStore, ModelVersionRecord
from flywheel.backends.metadata.engine import Database
from flywheel.backends.metadata.models import SqlModelStore
from tests.contracts.metadata import MetadataContract, OnPostgres, OnSqlite


def version(name: str = "purchase", sha: str = "a" * 64) -> ModelVersionRecord:
    return ModelVersionRecord(name=name, version=0, run_id=None, artifact_sha256=sha,
                              flavor="sklearn")


class ModelStoreContract(MetadataContract):
    @pytest.fixture
    def models(self, db: Database) -> ModelStore:
        return SqlModelStore(db)

    def test_versions_count_per_model(self, models: ModelStore) -> None:
        first = models.add_model_version(version())
        second = models.add_model_version(version(sha="b" * 64))
        other = models.add_model_version(version("churn"))
        assert (first.version, second.version, other.version) == (1, 2, 1)
        assert first.created_at is not None and first.created_at.tzinfo == dt.UTC
        assert [(v.name, v.version) for v in models.model_versions()] == [
            ("churn", 1), ("purchase", 1), ("purchase", 2)]
        assert models.get_model_version("purchase", 2) == second
        assert models.get_model_version("purchase", 3) is None

    def test_aliases_and_their_audit_trail(self, models: ModelStore) -> None:
        for _ in range(3):
            models.add_model_version(version())
        models.set_alias("purchase", "champion", 1, reason="first", actor="ana")
        models.set_alias("purchase", "challenger", 3, reason=None, actor=None)
        moved = models.set_alias("purchase", "champion", 2, reason="better auc", actor="bo")
        same = models.set_alias("purchase", "champion", 2, reason="again", actor="bo")
        models.set_alias("purchase", "challenger", None, reason="retired", actor="bo")

        assert (moved.from_version, moved.to_version) == (1, 2)
        assert (same.from_version, same.to_version) == (2, 2)
        assert models.aliases("purchase") == {("purchase", "champion"): 2}
        trail = [(c.alias, c.from_version, c.to_version, c.reason, c.actor)
                 for c in models.alias_history("purchase")]
        assert trail == [("champion", None, 1, "first", "ana"),
                         ("challenger", None, 3, None, None),
                         ("champion", 1, 2, "better auc", "bo"),
                         ("challenger", 3, None, "retired", "bo")]
        assert [c.to_version for c in models.alias_history("purchase", "champion")] == [1, 2]

    def test_alias_to_a_missing_version_is_refused(self, models: ModelStore) -> None:
        models.add_model_version(version())
        with pytest.raises(FlywheelError, match="no version 5"):
            models.set_alias("purchase", "champion", 5, reason=None, actor=None)
        with pytest.raises(FlywheelError, match="no alias 'champion'"):
            models.set_alias("purchase", "champion", None, reason=None, actor=None)
        assert models.alias_history("purchase") == []

    def test_concurrent_registrations_and_alias_moves(self, url: str,
                                                      models: ModelStore) -> None:
        workers, rounds = 4, 5
        barrier = threading.Barrier(workers)
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            db = Database(url)
            own = SqlModelStore(db)
            try:
                barrier.wait()
                for _ in range(rounds):
                    made = own.add_model_version(version())
                    own.set_alias("purchase", "champion", made.version,
                                  reason=f"w{worker}", actor=None)
            except BaseException as exc:
                errors.append(exc)
            finally:
                db.dispose()

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        assert errors == []
        versions = [v.version for v in models.model_versions("purchase")]
        assert versions == list(range(1, workers * rounds + 1))
        trail = models.alias_history("purchase", "champion")
        # Every change starts where the one before it ended: no lost or crossed update.
        assert trail[0].from_version is None
        assert all(a.to_version == b.from_version for a, b in itertools.pairwise(trail))
        assert models.aliases("purchase")[("purchase", "champion")] == trail[-1].to_version


class TestSqliteModelStore(OnSqlite, ModelStoreContract):
    pass


@pytest.mark.postgres
class TestPostgresModelStore(OnPostgres, ModelStoreContract):
    pass
