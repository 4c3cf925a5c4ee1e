"""One deployment: a request's features (enriched or as sent), routed to its members by the
policy, scored, answered, and every row logged as a prediction event.

`predict` scores in the calling thread (notebooks, the CLI); `predict_async` hands the
request to the deployment's micro-batcher and awaits it: scored on the batcher's thread,
or on the event loop itself for a model that has proven fast (serving/batcher.py).
A shadow member scores on its own thread after the answer is given.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from flywheel._core.clock import utc_now
from flywheel._core.ids import new_ids
from flywheel._core.text import first_line
from flywheel.features.store import FeatureStore
from flywheel.serving.bandit import Bandit
from flywheel.serving.batcher import MicroBatcher
from flywheel.serving.enrich import Enricher, Frame, check_request
from flywheel.serving.errors import BadPredictRequestError
from flywheel.serving.events import PREDICTION_SCHEMA
from flywheel.serving.pool import ModelPool
from flywheel.serving.predlog import PredictionLog
from flywheel.serving.results import MemberState, PredictionBatch, PredictionRow
from flywheel.serving.routing import canary_members
from flywheel.serving.scorer import Scorer, class_outputs
from flywheel.serving.spec import DeploymentSpec

__all__ = ["Deployment", "prediction_ids"]

_log = logging.getLogger("flywheel.serving")
_RECENT = 200_000
"""Predictions of a bandit deployment remembered for live feedback (older ones count
again when the state is read back from the log)."""


def prediction_ids(count: int) -> list[str]:
    """Random UUID-shaped ids that never take the form of the log's own id blocks (twelve
    digits at the end), so the id index keeps each one and can answer for it."""
    ids = new_ids(count)
    return [i if not i[-12:].isdigit() else f"{i[:-1]}f" for i in ids]


@dataclass(slots=True)
class _Request:
    entities: Mapping[str, Sequence[Any]] | None
    instances: Sequence[Mapping[str, Any]] | None
    request_data: Mapping[str, Sequence[Any]] | None
    count: int
    started: float
    at: str | None = None
    """The event time of its predictions (None: the deployment's clock)."""


@dataclass(slots=True)
class _Scored:
    member: str
    model: str
    version: int
    outputs: dict[str, Any]


class Deployment:
    """A served deployment: `predict(entities=...)` or `predict(instances=...)`."""

    def __init__(self, *, spec: DeploymentSpec, pool: ModelPool,
                 features: FeatureStore, log: PredictionLog,
                 bandit_stats: Callable[[str], Mapping[str, tuple[int, float]]] | None = None,
                 clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.name = spec.name
        self._clock = clock
        self.spec = spec
        self._pool = pool
        self._features = features
        self._log = log
        self._enricher: tuple[tuple[str, ...], Enricher] | None = None
        self._batcher: MicroBatcher[_Request, PredictionBatch] = MicroBatcher(
            process=self._process, max_batch_size=spec.batching.max_batch_size,
            max_wait_ms=spec.batching.max_wait_ms, name=spec.name,
            loop_budget_ms=spec.batching.loop_budget_ms,
            # A log that is behind may make `record` wait: never on the loop.
            loop_allowed=lambda: not log.behind())
        self._shadow: ThreadPoolExecutor | None = None
        self._bandit: Bandit | None = None
        self._recent: OrderedDict[str, str] = OrderedDict()
        if spec.bandit is not None:
            self._bandit = Bandit(spec=spec.bandit, members=spec.member_names)
            if bandit_stats is not None:
                self._bandit.reset(bandit_stats(spec.name))
        pool.load([m.model for m in spec.members])
        if spec.meta_model is not None:
            pool.load([spec.meta_model])

    # What it serves ----------------------------------------------------------------
    @property
    def members(self) -> list[MemberState]:
        states = []
        for member in self.spec.members:
            scorer = self._pool.scorer(member.model)
            states.append(MemberState(name=member.name, uri=str(member.model),
                                      model=scorer.name, version=scorer.version,
                                      inputs=list(scorer.columns), outputs=list(scorer.outputs),
                                      feature_service=scorer.feature_service))
        return states

    def ready(self) -> bool:
        try:
            self._scorers()
        except Exception:
            return False
        return True

    @property
    def bandit(self) -> Bandit | None:
        return self._bandit

    # Predicting ----------------------------------------------------------------------
    def predict(self, *, entities: Mapping[str, Sequence[Any]] | None = None,
                instances: Sequence[Mapping[str, Any]] | None = None,
                request_data: Mapping[str, Sequence[Any]] | None = None,
                at: str | None = None) -> PredictionBatch:
        """Score in this thread; every row is logged (at `at`, an ISO time, when the
        scored moment was not now: a replay of recorded traffic)."""
        request = self._request(entities, instances, request_data, at)
        answer = self._process([request])[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def predict_async(self, *, entities: Mapping[str, Sequence[Any]] | None = None,
                            instances: Sequence[Mapping[str, Any]] | None = None,
                            request_data: Mapping[str, Sequence[Any]] | None = None,
                            at: str | None = None) -> PredictionBatch:
        """Score through the micro-batcher: on its thread, or on this event loop once the
        model has proven fast (serving/batcher.py)."""
        return await self._batcher.score(self._request(entities, instances, request_data, at))

    def _request(self, entities: Mapping[str, Sequence[Any]] | None,
                 instances: Sequence[Mapping[str, Any]] | None,
                 request_data: Mapping[str, Sequence[Any]] | None,
                 at: str | None = None) -> _Request:
        started = time.perf_counter()
        count = check_request(entities, instances, request_data)
        return _Request(entities, instances, request_data, count, started, at)

    def _process(self, requests: list[_Request]) -> list[PredictionBatch | BaseException]:
        """Answer a batch of requests: each request's frame alone (a bad one fails alone),
        then every good row scored together."""
        scorers = self._scorers()
        whole = self._merged_frame(requests, scorers)
        if whole is not None:  # every request read together: one frame for all
            frames, owners, good = [whole], [_owners([r.count for r in requests])], \
                list(range(len(requests)))
            failed: dict[int, BaseException] = {}
        else:
            each = [self._frame_or_error(r, scorers) for r in requests]
            good = [i for i, f in enumerate(each) if isinstance(f, Frame)]
            failed = {i: f for i, f in enumerate(each) if isinstance(f, BaseException)}
            if not good:
                return list(failed.values())
            frames = [f for f in each if isinstance(f, Frame)]
            owners = [[k] * frame.count for k, frame in enumerate(frames)]
        scored: list[PredictionBatch | BaseException]
        try:
            scored = list(self._answer([requests[i] for i in good], frames, owners, scorers))
        except Exception as exc:
            # Find the request that fails, and answer the others.
            scored = [exc] if len(good) == 1 else [self._process([requests[i]])[0]
                                                   for i in good]
        answered = dict(zip(good, scored, strict=True))
        return [answered[i] if i in answered else failed[i] for i in range(len(requests))]

    def _scorers(self) -> dict[str, Scorer]:
        """Every member's scorer as of now (and the meta-model's, as `""`): one snapshot
        per batch, so a swap mid-batch cannot mix versions."""
        found = {m.name: self._pool.scorer(m.model) for m in self.spec.members}
        if self.spec.meta_model is not None:
            found[""] = self._pool.scorer(self.spec.meta_model)
        return found

    def _merged_frame(self, requests: list[_Request], scorers: Mapping[str, Scorer],
                      ) -> Frame | None:
        """One frame for every request of the batch, when they are entities of one key
        and their online read together succeeds (one round trip), or instances that all
        name the same features; else None, and each request is read alone, so that a
        request with a missing entity fails alone (and one without a feature is not
        scored with another's columns)."""
        if len(requests) < 2:
            return None
        if all(r.instances is not None for r in requests):
            return self._merged_instances(requests, scorers)
        shapes = {(tuple(r.entities), tuple(r.request_data or ()), r.request_data is None)
                  if r.entities is not None else None for r in requests}
        if len(shapes) != 1 or None in shapes:
            return None
        keys = list(requests[0].entities or ())
        merged = {k: [v for r in requests for v in (r.entities or {})[k]] for k in keys}
        data = None
        if requests[0].request_data is not None:
            data = {k: [v for r in requests for v in (r.request_data or {})[k]]
                    for k in requests[0].request_data}
        try:
            return self._enricher_for(scorers).entities(merged, data,
                                                        sum(r.count for r in requests))
        except Exception:
            return None

    def _merged_instances(self, requests: list[_Request], scorers: Mapping[str, Scorer],
                          ) -> Frame | None:
        rows = [row for r in requests for row in r.instances or ()]
        names = rows[0].keys()
        if not all(row.keys() == names for row in rows):
            return None
        return self._enricher_for(scorers).instances(rows, len(rows))

    def _frame_or_error(self, request: _Request, scorers: Mapping[str, Scorer],
                        ) -> Frame | BaseException:
        try:
            return self._frame(request, scorers)
        except Exception as exc:
            return exc

    def _frame(self, request: _Request, scorers: Mapping[str, Scorer]) -> Frame:
        if request.instances is not None:
            return self._enricher_for(scorers).instances(
                request.instances, request.count)
        assert request.entities is not None
        return self._enricher_for(scorers).entities(
            request.entities, request.request_data, request.count)

    def _enricher_for(self, scorers: Mapping[str, Scorer]) -> Enricher:
        services = tuple(dict.fromkeys(
            s.feature_service for name, s in scorers.items()
            if name and s.feature_service is not None))
        cached = self._enricher
        if cached is None or cached[0] != services:
            cached = (services, Enricher(spec=self.spec, features=self._features,
                                         services=services))
            self._enricher = cached
        return cached[1]

    # Scoring by policy ----------------------------------------------------------------
    def _answer(self, requests: list[_Request], frames: list[Frame], owners: list[list[int]],
                scorers: Mapping[str, Scorer]) -> list[PredictionBatch]:
        """Score every row of `frames`; `owners[f][r]` is the request (an index into
        `requests`) that row `r` of frame `f` belongs to. One answer per request."""
        rows = [(f, r) for f, frame in enumerate(frames) for r in range(frame.count)]
        policy = self.spec.policy
        if policy in ("weighted", "stacking"):
            scored = self._ensemble(frames, rows, scorers)
        else:
            names = self.spec.member_names
            if policy == "canary":
                assert self.spec.canary_share is not None
                ids = [frames[f].entity_ids[r] for f, r in rows]
                chosen = canary_members(self.name, self.spec.canary_share, ids)
            elif policy == "bandit":
                assert self._bandit is not None
                chosen = self._bandit.choose(len(rows))
            else:
                chosen = [0] * len(rows)
            scored = self._picked(frames, rows, [names[c] for c in chosen], scorers)
        batches = self._finish(requests, frames, owners, rows, scored, scorers)
        if policy == "shadow":
            self._score_shadow(requests, frames, owners, rows, scorers)
        return batches

    def _picked(self, frames: list[Frame], rows: list[tuple[int, int]], chosen: list[str],
                scorers: Mapping[str, Scorer]) -> list[_Scored]:
        scored: list[_Scored | None] = [None] * len(rows)
        for member in dict.fromkeys(chosen):
            positions = [i for i, c in enumerate(chosen) if c == member]
            scorer = scorers[member]
            outputs = scorer.score(_matrix(frames, [rows[i] for i in positions],
                                           scorer.columns))
            for position, output in zip(positions, outputs, strict=True):
                scored[position] = _Scored(member, scorer.name, scorer.version, output)
        return [s for s in scored if s is not None]

    def _ensemble(self, frames: list[Frame], rows: list[tuple[int, int]],
                  scorers: Mapping[str, Scorer]) -> list[_Scored]:
        raws = {}
        details: dict[str, list[dict[str, Any]]] = {}
        for spec in self.spec.members:
            scorer = scorers[spec.name]
            raws[spec.name] = scorer.raw(_matrix(frames, rows, scorer.columns))
            details[spec.name] = scorer.outputs_of(raws[spec.name])
        if self.spec.policy == "weighted":
            first = scorers[self.spec.members[0].name]
            combined = sum((m.weight or 0.0) * raws[m.name] for m in self.spec.members)
            outputs = (class_outputs(first.classes, np.asarray(combined))
                       if first.classes is not None
                       else [{"value": float(v)} for v in np.asarray(combined).reshape(-1)])
            model, version, member = first.name, 0, "weighted"
        else:
            meta = scorers[""]
            inputs = np.array([[_as_number(details[c.partition(".")[0]][i]
                                           [c.partition(".")[2]]) for c in meta.columns]
                               for i in range(len(rows))], dtype=float)
            outputs = meta.score(inputs)
            model, version, member = meta.name, meta.version, "stacking"
        result = []
        for i, output in enumerate(outputs):
            output["members"] = {
                m.name: {"model": scorers[m.name].name, "version": scorers[m.name].version,
                         **details[m.name][i]} for m in self.spec.members}
            result.append(_Scored(member, model, version, output))
        return result

    def _finish(self, requests: list[_Request], frames: list[Frame], owners: list[list[int]],
                rows: list[tuple[int, int]], scored: list[_Scored],
                scorers: Mapping[str, Scorer]) -> list[PredictionBatch]:
        done = time.perf_counter()
        ids = prediction_ids(len(rows))
        per_request: list[list[PredictionRow]] = [[] for _ in requests]
        events = []
        now = self._clock().isoformat()
        inputs = _inputs(scorers)
        features = [frame.feature_rows(inputs) for frame in frames]
        for (f, r), pid, answer in zip(rows, ids, scored, strict=True):
            frame = frames[f]
            request = requests[owners[f][r]]
            row = PredictionRow(prediction_id=pid, member=answer.member, model=answer.model,
                                version=answer.version, outputs=answer.outputs,
                                missing=frame.missing[r], entity_key=frame.entity_key,
                                entity_id=frame.entity_ids[r])
            per_request[owners[f][r]].append(row)
            events.append(self._event(row, features[f][r], (done - request.started) * 1000,
                                      request.at or now, shadow=False))
        self._log.record(events)
        if self._bandit is not None:
            self._remember(ids, scored)
        return [PredictionBatch(deployment=self.name, rows=batch) for batch in per_request]

    def _event(self, row: PredictionRow, features: dict[str, Any], latency_ms: float,
               when: str, *, shadow: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "prediction_id": row.prediction_id, "deployment": self.name, "member": row.member,
            "model": row.model, "model_version": row.version, "features": features,
            "outputs": row.outputs, "latency_ms": max(latency_ms, 0.0), "shadow": shadow,
            "defaulted": bool(row.missing)}
        if row.entity_key is not None and row.entity_id is not None:
            data["entity_key"] = row.entity_key
            data["entity_id"] = row.entity_id
        return {"schema": PREDICTION_SCHEMA, "event_id": row.prediction_id,
                "event_time": when, "data": data}

    def _remember(self, ids: list[str], scored: list[_Scored]) -> None:
        recent = self._recent
        for pid, answer in zip(ids, scored, strict=True):
            recent[pid] = answer.member
        while len(recent) > _RECENT:
            recent.popitem(last=False)

    def observe_feedback(self, prediction_id: str, outcome: float) -> bool:
        """Feed an outcome to the bandit, if this deployment made the prediction here."""
        if self._bandit is None:
            return False
        member = self._recent.get(prediction_id)
        if member is None:
            return False
        self._bandit.observe(member, outcome)
        return True

    # The shadow -----------------------------------------------------------------------
    def _score_shadow(self, requests: list[_Request], frames: list[Frame],
                      owners: list[list[int]], rows: list[tuple[int, int]],
                      scorers: Mapping[str, Scorer]) -> None:
        if self._shadow is None:
            self._shadow = ThreadPoolExecutor(max_workers=1,
                                              thread_name_prefix=f"flywheel-shadow-{self.name}")
        member = self.spec.members[1].name
        self._shadow.submit(self._shadow_job, requests, frames, owners, rows, member,
                            dict(scorers))

    def _shadow_job(self, requests: list[_Request], frames: list[Frame],
                    owners: list[list[int]], rows: list[tuple[int, int]], member: str,
                    scorers: dict[str, Scorer]) -> None:
        try:
            scored = self._picked(frames, rows, [member] * len(rows), scorers)
        except Exception as exc:
            _log.error("the shadow %s of %s failed (the answers were not affected): %s",
                      member, self.name, first_line(exc))
            return
        done = time.perf_counter()
        now = self._clock().isoformat()
        inputs = list(scorers[member].columns)
        features = [frame.feature_rows(inputs) for frame in frames]
        events = []
        for (f, r), pid, answer in zip(rows, prediction_ids(len(rows)), scored, strict=True):
            frame = frames[f]
            request = requests[owners[f][r]]
            row = PredictionRow(prediction_id=pid, member=member, model=answer.model,
                                version=answer.version, outputs=answer.outputs,
                                missing=frame.missing[r], entity_key=frame.entity_key,
                                entity_id=frame.entity_ids[r])
            events.append(self._event(row, features[f][r], (done - request.started) * 1000,
                                      request.at or now, shadow=True))
        self._log.record(events)

    def close(self) -> None:
        """Answer what is queued, finish the shadow's work; the log is drained after."""
        self._batcher.close()
        if self._shadow is not None:
            self._shadow.shutdown(wait=True)


def _inputs(scorers: Mapping[str, Scorer]) -> list[str]:
    names: dict[str, None] = {}
    for key, scorer in scorers.items():
        if key:
            names.update(dict.fromkeys(scorer.columns))
    return list(names)


def _owners(counts: Sequence[int]) -> list[int]:
    """The request of each row of a frame that holds requests of `counts` rows in turn."""
    return [k for k, count in enumerate(counts) for _ in range(count)]


def _matrix(frames: list[Frame], rows: list[tuple[int, int]], columns: list[str]) -> np.ndarray:
    if len(frames) == 1:
        return frames[0].matrix(columns, [r for _, r in rows])
    parts: dict[int, list[int]] = {}
    for f, r in rows:
        parts.setdefault(f, []).append(r)
    return np.vstack([frames[f].matrix(columns, rs) for f, rs in parts.items()])


def _as_number(value: Any) -> float:
    if isinstance(value, bool | int | float):
        return float(value)
    raise BadPredictRequestError(f"a member's output {value!r} is not a number the "
                                 "meta-model can read")
