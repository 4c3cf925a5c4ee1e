"""The `Recoveries` contract: each bad row recovered exactly once, on every backend."""

from __future__ import annotations

import random
import threading

import pytest

from flywheel._core.metadata.recoveries import Recoveries
from flywheel.backends.metadata.engine import Database
from flywheel.backends.metadata.recoveries import SqlRecoveries
from tests.contracts.metadata import MetadataContract, OnPostgres, OnSqlite


class RecoveriesContract(MetadataContract):
    @pytest.fixture
    def recoveries(self, db: Database) -> Recoveries:
        return SqlRecoveries(db)

    def test_claim_recoveries_claims_each_id_once(self, recoveries: Recoveries) -> None:
        assert recoveries.claim_recoveries([]) == set()
        claimed = recoveries.claim_recoveries([("b1", "e1"), ("b2", "e2"), ("b1", "e9")])
        assert claimed == {"b1", "b2"}
        assert recoveries.claim_recoveries([("b2", "e3"), ("b3", "e4")]) == {"b3"}
        assert recoveries.claim_recoveries([("b1", "e5")]) == set()
        assert recoveries.recovered_ids() == {"b1", "b2", "b3"}

    def test_concurrent_claims_never_overlap(self, recoveries: Recoveries,
                                             url: str) -> None:
        ids = [f"bad-{i:04d}" for i in range(300)]
        workers = 4
        barrier = threading.Barrier(workers)
        claims: list[set[str]] = [set() for _ in range(workers)]
        errors: list[BaseException] = []

        def claim(worker: int) -> None:
            db = Database(url)  # each caller has its own engine and connections
            own = SqlRecoveries(db)
            try:
                rng = random.Random(worker)
                barrier.wait()
                for _ in range(5):
                    batch = rng.sample(ids, 120)  # overlapping, in different orders
                    claims[worker] |= own.claim_recoveries((i, f"event-{i}") for i in batch)
                claims[worker] |= own.claim_recoveries((i, f"event-{i}") for i in ids)
            except BaseException as exc:
                errors.append(exc)
            finally:
                db.dispose()

        threads = [threading.Thread(target=claim, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert set().union(*claims) == set(ids)
        assert sum(len(c) for c in claims) == len(ids)  # no id claimed by two callers
        assert recoveries.recovered_ids() == set(ids)


class TestSqliteRecoveries(OnSqlite, RecoveriesContract):
    pass


@pytest.mark.postgres
class TestPostgresRecoveries(OnPostgres, RecoveriesContract):
    pass
