"""Deployment specs: `deployments/NAME.yaml` read into a checked `DeploymentSpec`.

Only the file itself is checked here (keys, types, weights, shares); whether the models
and aliases it names exist is `serving.check`'s, against the registry. Every problem is
one line naming the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flywheel.registry.uri import ModelUri, parse_uri
from flywheel.serving.errors import DeploymentSpecError

__all__ = [
    "ALGORITHMS",
    "POLICIES",
    "BanditSpec",
    "BatchingSpec",
    "DeploymentSpec",
    "MemberSpec",
    "load_spec",
    "parse_spec",
    "spec_files",
]

POLICIES = ("single", "weighted", "stacking", "canary", "shadow", "bandit")
ALGORITHMS = ("thompson", "epsilon_greedy")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_MEMBER = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
_KEYS = ("model", "policy", "members", "meta_model", "canary", "bandit", "defaults",
         "on_missing", "batching", "entity", "description")
_MEMBER_KEYS = ("name", "model", "weight")
_WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberSpec:
    name: str
    model: ModelUri
    weight: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BanditSpec:
    algorithm: str = "thompson"
    floor: float = 0.05
    """The least share of traffic each member keeps, so that none starves."""
    epsilon: float = 0.1
    reward: str = "outcome"


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchingSpec:
    max_batch_size: int = 64
    max_wait_ms: float = 0.0
    """How long a batch that found others waiting may wait for more. By default none: the
    batch is what queued while the model was busy, which already grows with the load; a
    wait helps only when many independent clients send at once (with a fixed number of
    clients, who each wait for their answer, it only adds latency: measured, 3,855 against
    5,007 requests/s at 32 connections with 2 ms)."""
    loop_budget_ms: float = 10.0
    """A model whose batches keep finishing within this is scored on the event loop (see
    serving/batcher.py); 0 keeps it on its own thread always."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentSpec:
    name: str
    policy: str
    members: tuple[MemberSpec, ...]
    meta_model: ModelUri | None = None
    canary_share: float | None = None
    bandit: BanditSpec | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    on_missing: str = "refuse"
    batching: BatchingSpec = field(default_factory=BatchingSpec)
    entity: str | None = None
    description: str = ""
    source: str = ""
    """The file it was read from, for error messages."""

    @property
    def member_names(self) -> list[str]:
        return [m.name for m in self.members]


def spec_files(folder: Path) -> list[Path]:
    """`deployments/*.yaml` (and `.yml`), by name; hidden files are left out."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.suffix in (".yaml", ".yml")
             and p.is_file() and not p.name.startswith(".")]
    return sorted(found, key=lambda p: p.stem)


def load_spec(path: Path, *, label: str | None = None) -> DeploymentSpec:
    """Read and check one deployment file; its stem is the deployment's name."""
    shown = label or path.name
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DeploymentSpecError(f"{shown}: cannot read it: {exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise DeploymentSpecError(f"{shown}: not YAML{line}") from None
    return parse_spec(path.stem, document, source=shown)


def parse_spec(name: str, document: Any, *, source: str | None = None) -> DeploymentSpec:
    """A deployment from its parsed YAML; anything wrong is a `DeploymentSpecError`."""
    where = source or f"deployment {name}"
    return _Parser(where).spec(name, document)


class _Parser:
    def __init__(self, where: str) -> None:
        self._where = where

    def fail(self, problem: str, hint: str | None = None) -> DeploymentSpecError:
        return DeploymentSpecError(f"{self._where}: {problem}", hint=hint)

    def spec(self, name: str, document: Any) -> DeploymentSpec:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise self.fail(f"{name!r} is not a deployment name",
                            hint="letters, digits, _ . - (at most 128)")
        body = self.mapping(document, "the file", _KEYS)
        policy, members = self.members(body)
        spec = DeploymentSpec(
            name=name, policy=policy, members=members,
            meta_model=self.meta_model(body, policy),
            canary_share=self.canary(body, policy), bandit=self.bandit(body, policy),
            defaults=self.defaults(body), on_missing=self.on_missing(body),
            batching=self.batching(body), entity=self.entity(body),
            description=self.text(body.get("description", ""), "description"),
            source=self._where)
        self.check_weights(spec)
        return spec

    def mapping(self, value: Any, what: str, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(f"{what} must be a mapping, not {_kind(value)}")
        unknown = [str(k) for k in value if k not in keys]
        if unknown:
            raise self.fail(f"unknown key{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(repr(k) for k in sorted(unknown))} in {what}",
                            hint=f"known: {', '.join(keys)}")
        return dict(value)

    def text(self, value: Any, what: str) -> str:
        if not isinstance(value, str):
            raise self.fail(f"{what} must be text, not {_kind(value)}")
        return value

    def uri(self, value: Any, what: str) -> ModelUri:
        if not isinstance(value, str):
            raise self.fail(f"{what} must be a model URI, not {_kind(value)}",
                            hint="e.g. purchase@champion, purchase/3 or purchase")
        try:
            return parse_uri(value)
        except Exception as exc:
            raise self.fail(f"{what}: {exc}") from None

    def number(self, value: Any, what: str, low: float, high: float, *,
               low_open: bool = False, high_open: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise self.fail(f"{what} must be a number, not {_kind(value)}")
        below = value <= low if low_open else value < low
        above = value >= high if high_open else value > high
        if below or above:
            span = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise self.fail(f"{what} is {value!r}, outside {span}")
        return float(value)

    def members(self, body: dict[str, Any]) -> tuple[str, tuple[MemberSpec, ...]]:
        policy = body.get("policy")
        if policy is not None and policy not in POLICIES:
            raise self.fail(f"unknown policy {policy!r}", hint=f"one of {', '.join(POLICIES)}")
        if "model" in body:
            if "members" in body:
                raise self.fail("give `model` (one model) or `members`, not both")
            if policy not in (None, "single"):
                raise self.fail(f"policy {policy} needs `members`, not `model`")
            model = self.uri(body["model"], "model")
            return "single", (MemberSpec(name=_member_name(model), model=model),)
        if "members" not in body:
            raise self.fail("no `model` and no `members`",
                            hint="e.g. model: purchase@champion")
        raw = body["members"]
        if not isinstance(raw, list) or not raw:
            raise self.fail("members must be a non-empty list")
        chosen = policy or "single"
        members = tuple(self.member(item, i, chosen) for i, item in enumerate(raw))
        names = [m.name for m in members]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise self.fail(f"member name{'s' if len(twice) > 1 else ''} "
                            f"{', '.join(twice)} used twice")
        self.member_count(chosen, len(members))
        return chosen, members

    def member(self, item: Any, index: int, policy: str) -> MemberSpec:
        body = self.mapping(item, f"member {index + 1}", _MEMBER_KEYS)
        if "model" not in body:
            raise self.fail(f"member {index + 1} has no `model`")
        model = self.uri(body["model"], f"member {index + 1}'s model")
        name = body.get("name", _member_name(model))
        if not isinstance(name, str) or not _MEMBER.fullmatch(name):
            raise self.fail(f"member name {name!r} is not a name",
                            hint="a letter, then letters, digits, _ or - (at most 64)")
        weight = None
        if "weight" in body:
            if policy != "weighted":
                raise self.fail(f"member {name}: `weight` applies to policy weighted only")
            weight = self.number(body["weight"], f"member {name}'s weight", 0, 1,
                                 low_open=True)
        elif policy == "weighted":
            raise self.fail(f"member {name} has no weight", hint="policy weighted needs one "
                            "weight per member, adding up to 1")
        return MemberSpec(name=name, model=model, weight=weight)

    def member_count(self, policy: str, count: int) -> None:
        wanted = {"single": (1, 1), "canary": (2, 2), "shadow": (2, 2)}.get(policy, (2, None))
        low, high = wanted
        if policy == "stacking":
            low = 1
        if count < low or (high is not None and count > high):
            need = f"exactly {low}" if low == high else f"at least {low}"
            roles = {"canary": " (the champion, then the challenger)",
                     "shadow": " (the champion, then the shadow)"}.get(policy, "")
            raise self.fail(f"policy {policy} needs {need} member{'s' if low > 1 else ''}"
                            f"{roles}, not {count}")

    def check_weights(self, spec: DeploymentSpec) -> None:
        if spec.policy != "weighted":
            return
        total = sum(m.weight or 0.0 for m in spec.members)
        if abs(total - 1.0) > _WEIGHT_TOLERANCE:
            raise self.fail(f"the weights add up to {total:g}, not 1")

    def meta_model(self, body: dict[str, Any], policy: str) -> ModelUri | None:
        if policy != "stacking":
            if "meta_model" in body:
                raise self.fail("`meta_model` applies to policy stacking only")
            return None
        if "meta_model" not in body:
            raise self.fail("policy stacking needs a `meta_model`",
                            hint="a registered model over the members' outputs")
        return self.uri(body["meta_model"], "meta_model")

    def canary(self, body: dict[str, Any], policy: str) -> float | None:
        if policy != "canary":
            if "canary" in body:
                raise self.fail("`canary` applies to policy canary only")
            return None
        if "canary" not in body:
            raise self.fail("policy canary needs `canary: {share: ...}`",
                            hint="the challenger's share of traffic, e.g. 0.1")
        section = self.mapping(body["canary"], "canary", ("share",))
        if "share" not in section:
            raise self.fail("canary has no `share`")
        return self.number(section["share"], "canary share", 0, 1, low_open=True,
                           high_open=True)

    def bandit(self, body: dict[str, Any], policy: str) -> BanditSpec | None:
        if policy != "bandit":
            if "bandit" in body:
                raise self.fail("`bandit` applies to policy bandit only")
            return None
        members = len(body.get("members") or ())
        section = self.mapping(body.get("bandit", {}), "bandit",
                               ("algorithm", "floor", "epsilon", "reward"))
        algorithm = section.get("algorithm", "thompson")
        if algorithm not in ALGORITHMS:
            raise self.fail(f"unknown bandit algorithm {algorithm!r}",
                            hint=f"one of {', '.join(ALGORITHMS)}")
        if "epsilon" in section and algorithm != "epsilon_greedy":
            raise self.fail("`epsilon` applies to algorithm epsilon_greedy only")
        floor = self.number(section.get("floor", 0.05), "bandit floor", 0, 1 / members,
                            high_open=True)
        epsilon = self.number(section.get("epsilon", 0.1), "bandit epsilon", 0, 1)
        reward = self.text(section.get("reward", "outcome"), "bandit reward")
        if reward != "outcome":
            raise self.fail(f"unknown bandit reward {reward!r}",
                            hint="outcome: the feedback's outcome")
        return BanditSpec(algorithm=algorithm, floor=floor, epsilon=epsilon, reward=reward)

    def defaults(self, body: dict[str, Any]) -> dict[str, Any]:
        raw = body.get("defaults", {})
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise self.fail(f"defaults must be a mapping of feature to value, not {_kind(raw)}")
        for key, value in raw.items():
            if not isinstance(key, str):
                raise self.fail(f"defaults: {key!r} is not a feature name")
            if not (value is None or isinstance(value, str | int | float | bool)):
                raise self.fail(f"defaults: {key} must be a number, text, a boolean or null, "
                                f"not {_kind(value)}")
        return dict(raw)

    def on_missing(self, body: dict[str, Any]) -> str:
        given = body.get("on_missing")
        if given is None:
            return "default" if body.get("defaults") else "refuse"
        if given not in ("default", "refuse"):
            raise self.fail(f"on_missing is {given!r}", hint="default or refuse")
        if given == "default" and not body.get("defaults"):
            raise self.fail("on_missing: default needs `defaults`",
                            hint="the feature values to score missing entities with")
        return str(given)

    def batching(self, body: dict[str, Any]) -> BatchingSpec:
        section = self.mapping(body.get("batching", {}), "batching",
                               ("max_batch_size", "max_wait_ms", "loop_budget_ms"))
        size = section.get("max_batch_size", 64)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 100_000:
            raise self.fail(f"batching max_batch_size is {size!r}",
                            hint="a whole number from 1 to 100000")
        wait = self.number(section.get("max_wait_ms", 0.0), "batching max_wait_ms", 0, 1000)
        budget = self.number(section.get("loop_budget_ms", 10.0), "batching loop_budget_ms",
                             0, 1000)
        return BatchingSpec(max_batch_size=size, max_wait_ms=wait, loop_budget_ms=budget)

    def entity(self, body: dict[str, Any]) -> str | None:
        if "entity" not in body or body["entity"] is None:
            return None
        return self.text(body["entity"], "entity")


def _member_name(model: ModelUri) -> str:
    name = re.sub(r"[^A-Za-z0-9_\-]", "_", model.name)
    return name if name[:1].isalpha() else f"m_{name}"[:64]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "text",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)
