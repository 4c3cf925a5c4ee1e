"""The one FastAPI app: a router per role, the token policy, and errors as one line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from flywheel import __version__
from flywheel._core.metadata.tokens import TokenRecord
from flywheel.api.auth import TOKEN_TTL, PublishableKeys, TokenAuth, TokenCache
from flywheel.api.deployments import DeploymentFinder
from flywheel.api.errors import install_error_handlers
from flywheel.api.events import events_router
from flywheel.api.fast_path import FastPath
from flywheel.api.features import features_router
from flywheel.api.feedback import feedback_router
from flywheel.api.metrics import LogCollector, ServingMetrics, metrics_router
from flywheel.api.oip import InferHandler, oip_router
from flywheel.api.openapi import install_openapi
from flywheel.api.predict import PredictHandler, predict_router
from flywheel.api.snowplow import keyed_router, snowplow_router
from flywheel.ingest.keys import RateLimiter

if TYPE_CHECKING:
    from flywheel.features.definitions import FeatureRegistry
    from flywheel.ingest.ingestor import Ingestor
    from flywheel.project import Project
    from flywheel.serving import Deployments

__all__ = ["FlywheelApp", "Health", "create_app"]

_DESCRIPTION = """\
Flywheel's HTTP server. Events are validated against their registered schema and
stored durably before the answer is sent; rejected events are kept in bad rows with the
reason. On a non-loopback address every request (but `/healthz`, these docs and the
`/k/<key>/` tracker doors) needs `Authorization: Bearer <token>` with the route's scope
(`admin` implies all). Browser and mobile trackers, which cannot send a token, use a
publishable key in the collector URL instead: `/k/<key>/com.snowplowanalytics.snowplow/tp2`
and `/k/<key>/i`; a key allows only its app ids, origins and rate. Every error is answered
with `{"detail": "<one line>"}`."""


class Health(BaseModel):
    status: str


class FlywheelApp(FastAPI):
    """The FastAPI app, with predict and inference requests answered by `fast_path`
    before FastAPI's own middleware stack sees them (None: every request is FastAPI's)."""

    fast_path: FastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_path
        if fast is not None and await fast(scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def create_app(project: Project, *, require_tokens: bool = False,
               token_ttl: float = TOKEN_TTL, metrics: ServingMetrics | None = None,
               ) -> FlywheelApp:
    """The app for `project`. `require_tokens=False` is for loopback binds only:
    `flywheel.api.server` decides it from the address it binds. `metrics` (default: new
    ones, or the worker processes' shared ones when PROMETHEUS_MULTIPROC_DIR is set)."""
    app = FlywheelApp(title="Flywheel", version=__version__, description=_DESCRIPTION)
    app.state.project = project

    def find_token(digest: str) -> TokenRecord | None:
        return project.metadata.find_token(digest)  # opened on first use, not here

    # One cache for tokens and keys: a revoked one is refused within `token_ttl` seconds.
    cache = TokenCache(find_token, ttl=token_ttl, negative_ttl=token_ttl)
    auth = TokenAuth(cache if require_tokens else None)
    limit = project.config.server.max_request_bytes

    def ingestor() -> Ingestor:
        return project.ingestor  # opened on the first event, not here

    app.include_router(events_router(ingestor, limit, auth.require("ingest")))
    app.include_router(snowplow_router(ingestor, limit, auth.require("ingest")))
    app.include_router(keyed_router(ingestor, limit, PublishableKeys(cache), RateLimiter()))
    app.include_router(features_router(project, limit, auth.require("read")))

    def deployments() -> Deployments:
        return project.deployments  # models load on a deployment's first request

    def feature_registry() -> FeatureRegistry:
        return project.features.registry

    measured = metrics if metrics is not None else ServingMetrics()
    measured.add_collector(LogCollector(project))
    finder = DeploymentFinder(deployments)
    predicting = PredictHandler(deployments=finder, metrics=measured)
    app.include_router(predict_router(predicting, limit, auth.require("predict")))
    app.include_router(feedback_router(deployments, measured, limit, auth.require("feedback")))
    inferring = InferHandler(deployments=finder, features=feature_registry, metrics=measured)
    app.include_router(oip_router(finder, feature_registry, inferring, limit,
                                  auth.require("predict")))
    app.include_router(metrics_router(measured, auth.require("read")))

    @app.get("/healthz", summary="Liveness check", tags=["health"])
    async def healthz() -> Health:
        """Always open (no token): the process is up and serving."""
        return Health(status="ok")

    install_error_handlers(app)
    app.fast_path = FastPath(predict=predicting, infer=inferring, max_request_bytes=limit,
                             check_token=auth.checker("predict"))
    install_openapi(app, lambda: project.schemas.current,
                    project.config.ingest.max_future_seconds)
    return app
