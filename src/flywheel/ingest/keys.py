"""Publishable ingest keys: what a key allows, checked before anything is stored.

A publishable key is carried in the collector URL (`/k/<key>/com.snowplowanalytics.snowplow/tp2`,
`/k/<key>/i`), because browser and mobile trackers cannot send a bearer token but every
Snowplow tracker keeps a path given in its endpoint. It is not a secret: it ships in web
pages. So it opens only the tracker doors, and only for

- the app ids it lists: every event of a request must carry one of them in `aid`;
- the origins it lists: a request with an `Origin` header must come from one of them
  (trackers outside browsers send none); CORS is answered only for these;
- its rate: a token bucket of events per second, kept in each server process.

A request that breaks a limit is refused whole, before anything is stored: nothing of it
is in the log or in bad rows, and the answer (403 or 429) says so. Bad rows hold data the
project owns and can recover; storing what a key does not allow would let anyone who
read the key in a page write into them, and recovering such rows would bypass the key.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from flywheel._core.errors import AuthError, InputError
from flywheel._core.metadata.tokens import TokenRecord

__all__ = [
    "KEY_PATTERN",
    "KEY_PREFIX",
    "MAX_APP_ID",
    "KeyRefusedError",
    "RateLimitedError",
    "RateLimiter",
    "TokenBucket",
    "check_app_id",
    "check_app_ids",
    "check_origin",
    "describe_rate",
    "new_key",
    "normalise_origin",
    "parse_rate",
]

KEY_PREFIX = "pk_"
"""Publishable keys start with this, so that one is never mistaken for a secret token."""
KEY_PATTERN = r"^pk_[A-Za-z0-9_-]{8,128}$"
MAX_APP_ID = 255
_ROUNDING = 1e-9
"""Tokens short of one by less than this count as one: a client that waits exactly the
time it was told must not be refused for a rounding error."""
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute))?\s*$", re.I)


class KeyRefusedError(AuthError):
    """The publishable key does not allow this request (origin or app id)."""

    http_status = 403


class RateLimitedError(InputError):
    """The publishable key is over its rate; retry after `retry_after` seconds."""

    http_status = 429

    def __init__(self, message: str, *, retry_after: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(18)


def parse_rate(text: str) -> float:
    """Events per second from `N/s`, `N/min` or `N` (per second); InputError otherwise."""
    match = _RATE.match(text)
    value = float(match.group(1)) if match else 0.0
    if match is None or not math.isfinite(value) or value <= 0:
        raise InputError(f"rate {text!r} is not a positive number of events per second or "
                         "minute", hint="write it as 50/s or 600/min")
    per_minute = (match.group(2) or "s").lower().startswith("m")
    return value / 60 if per_minute else value


def describe_rate(rate: float | None) -> str:
    if rate is None:
        return "no limit"
    return f"{rate:g}/s" if rate >= 1 else f"{rate * 60:g}/min"


def normalise_origin(text: str) -> str:
    """`scheme://host[:port]`, lower-case, as browsers send it in `Origin`; InputError otherwise."""
    parts = urlsplit(text.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (parts.scheme.lower() not in ("http", "https") or not parts.hostname or port == -1
            or parts.path not in ("", "/") or parts.query or parts.fragment
            or parts.username or parts.password):
        raise InputError(f"origin {text!r} is not scheme://host[:port]",
                         hint="write it as a browser sends it, e.g. https://shop.example.com")
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[parts.scheme.lower()]
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme.lower()}://{host}{suffix}"


def check_app_id(text: str) -> str:
    if not text or len(text) > MAX_APP_ID or not text.isprintable():
        raise InputError(f"app id {text!r} is not allowed",
                         hint=f"use 1-{MAX_APP_ID} printable characters, as in the tracker's appId")
    return text


def check_origin(record: TokenRecord, origin: str | None) -> str | None:
    """The origin to answer CORS for (None when the request has none); refuses others."""
    if origin is None:
        return None
    if origin in record.origins:
        return origin
    allowed = ", ".join(record.origins) if record.origins else "no browser origin"
    raise KeyRefusedError(f"origin {_shown(origin)} is not allowed by key '{record.name}' "
                          f"(it allows {allowed}); nothing was stored",
                          hint="add it with `flywheel token create NAME --publishable "
                               "--origin ORIGIN ...` (a new key)")


def check_app_ids(record: TokenRecord, events: Sequence[Any]) -> None:
    """Refuse the whole request unless every event (a parameter map) names a listed `aid`."""
    allowed = record.app_ids
    for index, params in enumerate(events):
        aid = params.get("aid") if type(params) is dict else None
        if type(aid) is str and aid in allowed:
            continue
        what = "has no app id (aid)" if aid is None or aid == "" else f"has app id {_shown(aid)}"
        if type(params) is not dict:
            what = "is not a JSON object of tracker parameters, so it names no app id"
        raise KeyRefusedError(
            f"event {index} {what}; key '{record.name}' allows {', '.join(allowed)}; "
            "the request was refused whole and nothing was stored",
            hint="set the tracker's appId to one the key lists")


class TokenBucket:
    """`rate` events per second, in bursts of up to one second's worth (at least one).

    A request is admitted while the bucket is not in debt, and then takes all its events,
    possibly going into debt: a batch larger than the burst still passes when the bucket
    is full, and the long-run rate stays `rate` because debt is repaid before the next."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self._clock = clock
        self._tokens = self.capacity
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def wait(self) -> float:
        """Seconds until a request would be admitted (0: now)."""
        with self._lock:
            self._refill()
            return 0.0 if self._tokens >= 1 - _ROUNDING else (1 - self._tokens) / self.rate

    def take(self, events: int) -> float:
        """Admit and charge `events` (returns 0), or return the seconds to wait."""
        with self._lock:
            self._refill()
            if self._tokens < 1 - _ROUNDING:
                return (1 - self._tokens) / self.rate
            self._tokens -= events
            return 0.0


class RateLimiter:
    """One bucket per publishable key (by its sha256 and rate), in this process only: with
    N server processes a key may send up to N times its rate in all."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 4096) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[tuple[str, float], TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, record: TokenRecord) -> TokenBucket | None:
        if record.rate is None:
            return None
        ident = (record.sha256, record.rate)
        with self._lock:
            bucket = self._buckets.get(ident)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._buckets.clear()  # revoked keys' buckets go; live ones start full
                bucket = self._buckets[ident] = TokenBucket(record.rate, clock=self._clock)
        return bucket

    def check(self, record: TokenRecord) -> None:
        """Refuse (429) a request while the key's bucket is in debt, before reading it."""
        bucket = self._bucket(record)
        if bucket is not None:
            self._raise_if(record, bucket.wait())

    def take(self, record: TokenRecord, events: int) -> None:
        """Charge `events` to the key, or refuse (429) the request."""
        bucket = self._bucket(record)
        if bucket is not None and events:
            self._raise_if(record, bucket.take(events))

    @staticmethod
    def _raise_if(record: TokenRecord, wait: float) -> None:
        if wait <= 0:
            return
        retry_after = max(1, math.ceil(wait))
        raise RateLimitedError(
            f"key '{record.name}' is over its rate of {describe_rate(record.rate)} events "
            f"(per server process); nothing of this request was stored; retry after "
            f"{retry_after} s", retry_after=retry_after)


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= 60 else text[:60] + "...")
