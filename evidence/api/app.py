"""The admin API application: routes, the access-event middleware, problem documents, metrics.

    app = create_app(settings)        # then: uvicorn.run(app, host=..., port=...)

Every call except /healthz and /metrics (which machines poll and which show
no trail data) is recorded as an access event before its response leaves:
action trail.search / trail.read / trail.export for the operations,
trail.access_denied for 401 and 403 (the operation that was refused is in
metadata.operation), trail.describe for the OpenAPI document and trail.request
for anything else; outcome success below 400, failure from 400 on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sealtrail.config import Settings
from sealtrail.errors import ConfigError, NotProvableError, SealtrailError, ServiceUnavailable
from sealtrail.evidence.api.access import AccessRecorder
from sealtrail.evidence.api.problems import add_problem_schema, problem
from sealtrail.evidence.api.routes import ApiError, build_router
from sealtrail.evidence.api.tokens import TokenStore
from sealtrail.producers.context import current_context, reset_context, set_context
from sealtrail.producers.middleware.asgi import AuditMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException

_log = logging.getLogger("sealtrail.serve")
UNRECORDED = frozenset({"/healthz", "/metrics"})
DESCRIBE = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect"})
MAX_QUERY_PARAMS = 32
MAX_TEXT = 256

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _version() -> str:
    try:
        return version("sealtrail")
    except PackageNotFoundError:
        return "0"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("sealtrail_serve_requests_total", "API calls by operation and status",
                                ["action", "status"], registry=self.registry)
        self.seconds = Histogram("sealtrail_serve_request_seconds", "API call duration", ["action"],
                                 registry=self.registry)
        self.recorded = Counter("sealtrail_serve_access_events_total", "access events queued for the trail",
                                registry=self.registry)
        self.unrecorded = Counter("sealtrail_serve_access_events_failed_total",
                                  "access events that could not be queued", registry=self.registry)
        self.backlog = Gauge("sealtrail_serve_access_backlog", "access events waiting for the producer",
                             registry=self.registry)


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AccessMiddleware:
    """Records each call as an access event (when the response starts) and logs it."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, recorder: AccessRecorder, metrics: Metrics,
                 settings: Settings) -> None:
        self.app = app
        self.recorder = recorder
        self.metrics = metrics
        self.context = AuditMiddleware(app, trusted_proxies=settings.producer.trusted_proxies, user=lambda scope: None)
        self.resource = ("audit_trail", _clip(f"s3://{settings.s3.bucket}/{settings.s3.prefix}"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        started = time.perf_counter()
        if path in UNRECORDED:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        ctx = self.context.context_for(scope)
        token = set_context(ctx)
        status: int | None = None
        try:
            if self.recorder.full():
                self.metrics.unrecorded.inc()
                _log.error("refusing %s %s: %d access events wait for the producer", scope.get("method"),
                           _clip(path), self.recorder.backlog)
                await problem(503, "access events cannot be recorded right now; try again later")(scope, receive, send)
                return

            async def send_recorded(message: MutableMapping[str, Any]) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    self._record(scope, status, started)
                    headers = list(message.get("headers", []))
                    if ctx.request_id:
                        headers.append((b"x-request-id", ctx.request_id.encode("latin-1")))
                    message = {**message, "headers": headers}
                await send(message)

            try:
                await self.app(scope, receive, send_recorded)
            except Exception:
                if status is None:
                    status = 500
                    self._record(scope, status, started)
                raise
        finally:
            reset_context(token)

    def _record(self, scope: Scope, status: int, started: float) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        path: str = scope.get("path", "")
        method: str = scope.get("method", "")
        principal = state.get("principal")
        operation = state.get("action") or ("trail.describe" if path in DESCRIBE else "trail.request")
        denied = status in (401, 403)
        action = "trail.access_denied" if denied else operation
        actor = principal.name if principal is not None else "anonymous"
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        metadata: dict[str, Any] = {"method": _clip(method, 16), "path": _clip(path, 1024), "status": status,
                                    "operation": operation, "duration_ms": elapsed_ms}
        if principal is not None:
            metadata["role"] = principal.role.value
        query = _query(scope)
        if query:
            metadata["filters"] = query
        if state.get("denied"):
            metadata["reason"] = state["denied"]
        if state.get("result"):
            metadata["result"] = state["result"]
        outcome = "success" if status < 400 else "failure"
        try:
            event = self.recorder.build(action, outcome=outcome, actor=actor, metadata=metadata, resource=self.resource)
            queued = self.recorder.submit(event, timeout_s=0.5)
        except SealtrailError as e:
            _log.error("access event for %s %s not built: %s", method, _clip(path), e)
            queued = False
        if queued:
            self.metrics.recorded.inc()
        else:
            self.metrics.unrecorded.inc()
        self.metrics.requests.labels(action, str(status)).inc()
        self.metrics.seconds.labels(action).observe(elapsed_ms / 1000)
        _log.info("%s %s %d %.1fms actor=%s action=%s", method, _clip(path), status, elapsed_ms, actor, action,
                  extra={"fields": {"method": method, "path": _clip(path, 1024), "status": status, "actor": actor,
                                    "action": action, "duration_ms": elapsed_ms, "request_id": current_context().request_id}})


def _query(scope: Scope) -> dict[str, str]:
    from urllib.parse import parse_qsl

    raw = scope.get("query_string", b"").decode("latin-1")
    out: dict[str, str] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True)[:MAX_QUERY_PARAMS]:
        out[_clip(key, 64)] = _clip(value)
    return out


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()]


def create_app(settings: Settings, *, tokens: TokenStore | None = None,
               recorder: AccessRecorder | None = None) -> FastAPI:
    """The API over the trail that ``settings`` points at; the recorder starts and stops with the app."""
    tokens = tokens or TokenStore(settings.serve_tokens_file)
    recorder = recorder or AccessRecorder(settings)
    metrics = Metrics()
    metrics.backlog.set_function(lambda: recorder.backlog)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(recorder.start)
        try:
            yield
        finally:
            await asyncio.to_thread(recorder.close)

    app = FastAPI(
        title="sealtrail admin API",
        version=_version(),
        description="Search, read and export the tamper-evident audit trail. Every call is itself recorded "
                    "in the trail as an access event. Errors are RFC 9457 problem documents.",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.tokens = tokens
    app.state.recorder = recorder
    app.state.metrics = metrics
    app.include_router(build_router(settings), prefix="/v1")

    @app.get("/healthz", summary="Liveness (no token, not recorded)", operation_id="health", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if settings.serve.metrics:
        @app.get("/metrics", summary="Prometheus metrics (no token, not recorded)", operation_id="metrics",
                 response_class=PlainTextResponse, tags=["operations"],
                 responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}})
        def metrics_endpoint() -> PlainTextResponse:
            return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Any:
        return problem(exc.status, exc.detail, instance=request.url.path, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Any:
        return problem(422, "the request does not match the API", instance=request.url.path,
                       errors=_validation_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Any:
        return problem(exc.status_code, str(exc.detail), instance=request.url.path,
                       headers=dict(exc.headers) if exc.headers else None)

    @app.exception_handler(ServiceUnavailable)
    async def _unavailable(request: Request, exc: ServiceUnavailable) -> Any:
        return problem(503, str(exc), instance=request.url.path)

    @app.exception_handler(NotProvableError)
    async def _not_provable(request: Request, exc: NotProvableError) -> Any:
        return problem(409, str(exc), instance=request.url.path)

    @app.exception_handler(ConfigError)
    async def _bad_request(request: Request, exc: ConfigError) -> Any:
        return problem(400, str(exc), instance=request.url.path)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Any:
        _log.exception("unhandled error in %s %s", request.method, request.url.path)
        return problem(500, "internal error; the server log has the details", instance=request.url.path)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_problem_schema(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(AccessMiddleware, recorder=recorder, metrics=metrics, settings=settings)
    return app

