"""The `AlertStore` contract: each alert claimed once, cooldowns decided atomically, retries
taken by one caller, and retraining decisions kept, on every backend."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest

from flywheel._core.metadata.alerts import AlertRecord, AlertStore, RetrainingDecision
from flywheel.backends.metadata.alerts import SqlAlertStore
from flywheel.backends.metadata.engine import Database
from tests.contracts.metadata import MetadataContract, OnPostgres, OnSqlite

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def alert(window: int = 0, *, subject: str = "price", action: str = "ops",
          monitor: str = "purchase_drift", fired: dt.datetime = T0) -> AlertRecord:
    start = T0 + window * HOUR
    return AlertRecord(monitor=monitor, action=action, window_start=start,
                       window_end=start + HOUR, subject=subject, kind="drift",
                       statistic="psi", value=0.31, threshold=0.2, status="red",
                       fired_at=fired)


class AlertStoreContract(MetadataContract):
    @pytest.fixture
    def store(self, db: Database) -> AlertStore:
        return SqlAlertStore(db)

    def test_a_key_is_claimed_once(self, store: AlertStore) -> None:
        first = store.claim_alert(alert(), quiet_since=T0 - HOUR)
        assert first is not None and first.id is not None
        assert (first.outcome, first.attempts) == ("sending", 1)
        assert store.claim_alert(alert(fired=T0 + 5 * HOUR), quiet_since=T0 + 4 * HOUR) is None
        other_subject = store.claim_alert(alert(subject="channel"), quiet_since=T0 + HOUR)
        other_action = store.claim_alert(alert(action="page"), quiet_since=T0 - HOUR)
        assert other_subject is not None and other_action is not None
        assert len({first.id, other_subject.id, other_action.id}) == 3
        stored = store.alerts()
        assert len(stored) == 3
        assert stored[-1] == first  # oldest last; read back equal, timestamps in UTC
        assert stored[-1].window_start.tzinfo == dt.UTC

    def test_the_cooldown_suppresses_within_it_only(self, store: AlertStore) -> None:
        fired = store.claim_alert(alert(0), quiet_since=T0 - HOUR)
        within = store.claim_alert(alert(1, fired=T0 + dt.timedelta(minutes=30)),
                                   quiet_since=T0 - dt.timedelta(minutes=30))
        assert fired is not None and within is not None
        assert within.outcome == "suppressed" and within.attempts == 0
        assert f"alert {fired.id}" in within.detail
        # Suppressed alerts do not extend the cooldown: an hour after the first, it fires.
        after = store.claim_alert(alert(2, fired=T0 + HOUR + dt.timedelta(seconds=1)),
                                  quiet_since=T0 + dt.timedelta(seconds=1))
        assert after is not None and after.outcome == "sending"
        other_monitor = store.claim_alert(alert(1, monitor="quality", fired=T0),
                                          quiet_since=T0 - HOUR)
        assert other_monitor is not None and other_monitor.outcome == "sending"
        assert [a.outcome for a in store.alerts(monitor="purchase_drift")] == [
            "sending", "suppressed", "sending"]
        assert len(store.alerts(outcome="suppressed")) == 1

    def test_outcomes_and_retries(self, store: AlertStore) -> None:
        claimed = store.claim_alert(alert(), quiet_since=T0 - HOUR)
        assert claimed is not None and claimed.id is not None
        store.finish_alert(claimed.id, "failed", "HTTP 503")
        assert store.claim_retry(claimed.id, attempts=2) is False  # not its attempt count
        assert store.claim_retry(claimed.id, attempts=1) is True
        assert store.claim_retry(claimed.id, attempts=1) is False  # taken already
        store.finish_alert(claimed.id, "delivered", "HTTP 200")
        (stored,) = store.alerts()
        assert (stored.outcome, stored.attempts, stored.detail) == ("delivered", 2, "HTTP 200")
        assert store.claim_retry(claimed.id, attempts=2) is False  # delivered: nothing to do

    def test_filters(self, store: AlertStore) -> None:
        for window in range(3):
            store.claim_alert(alert(window, fired=T0 + window * HOUR),
                              quiet_since=T0 + window * HOUR - dt.timedelta(minutes=1))
        store.claim_alert(alert(0, action="page"), quiet_since=T0)
        assert len(store.alerts(since=T0 + HOUR)) == 2
        assert [a.window_start for a in store.alerts(action="ops", limit=2)] == [
            T0 + 2 * HOUR, T0 + HOUR]
        assert store.alerts(monitor="nothing") == []

    def test_concurrent_claims_fire_once(self, store: AlertStore, url: str) -> None:
        workers, rounds = 4, 8
        barrier = threading.Barrier(workers)
        errors: list[BaseException] = []

        def claim(worker: int) -> None:
            db = Database(url)  # each caller has its own engine and connections
            own = SqlAlertStore(db)
            try:
                for round_ in range(rounds):
                    barrier.wait()
                    # Every worker claims the same key and a key of its own at once: the
                    # shared key is claimed once, and the cooldown lets one alert through.
                    for subject in (f"own-{worker}", "shared"):
                        own.claim_alert(alert(monitor=f"m{round_}", subject=subject),
                                        quiet_since=T0 - HOUR)
            except BaseException as exc:
                errors.append(exc)
            finally:
                db.dispose()

        threads = [threading.Thread(target=claim, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        for round_ in range(rounds):
            stored = store.alerts(monitor=f"m{round_}")
            assert sorted(a.subject for a in stored) == sorted(
                ["shared", *(f"own-{w}" for w in range(workers))])
            assert sorted(a.outcome for a in stored) == ["sending"] + ["suppressed"] * workers

    def test_decisions(self, store: AlertStore) -> None:
        decision = RetrainingDecision(
            policy="retrain_purchase", model="purchase", alert_id=12, run_id="ab12",
            champion_version=1, challenger_version=2, metric="auc", champion_value=0.74,
            challenger_value=0.81, rows=1532, outcome="promoted", reason="auc 0.81 vs 0.74",
            decided_at=T0)
        first = store.add_decision(decision)
        second = store.add_decision(dataclasses.replace(decision, policy="other",
                                                        champion_value=None, alert_id=None,
                                                        outcome="failed"))
        assert first.id is not None and second.id is not None and second.id > first.id
        assert store.decisions() == [second, first]
        assert store.decisions(policy="retrain_purchase") == [first]


class TestSqliteAlertStore(OnSqlite, AlertStoreContract):
    pass


@pytest.mark.postgres
class TestPostgresAlertStore(OnPostgres, AlertStoreContract):
    pass
