"""The admin API application: routes, the gate every call passes, problem documents, metrics.

    app = create_app(settings)        # then: uvicorn.run(app, ...), or server.py's config

What is recorded, and how calls are checked before any route runs, is in
gate.py. Prometheus metrics are served on their own listener on 127.0.0.1
(serve.metrics_port) while the app runs, never on the API's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sealtrail.config import Settings
from sealtrail.errors import ConfigError, NotProvableError, ServiceUnavailable
from sealtrail.evidence.api.access import AccessRecorder
from sealtrail.evidence.api.gate import Gate
from sealtrail.evidence.api.metrics import Metrics
from sealtrail.evidence.api.openapi import complete_document
from sealtrail.evidence.api.problems import add_problem_schema, problem
from sealtrail.evidence.api.routes import ApiError, build_router
from sealtrail.evidence.api.throttle import Throttle
from sealtrail.evidence.api.tokens import TokenStore
from sealtrail.metrics_server import serve_metrics
from sealtrail.producers.middleware.proxies import trusted_networks

_log = logging.getLogger("sealtrail.serve")
BROAD_PROXY_RANGE = 256  # a trusted range with more addresses than this is likely to hold clients


def _version() -> str:
    try:
        return version("sealtrail")
    except PackageNotFoundError:
        return "0"


def _warn_broad_proxies(settings: Settings) -> None:
    for net in trusted_networks(settings.producer.trusted_proxies):
        if net.num_addresses > BROAD_PROXY_RANGE and not settings.serve.proxy_hops:
            _log.warning("producer.trusted_proxies holds %s (%d addresses): a client inside it can name any address "
                         "in X-Forwarded-For; list the proxies' own addresses, or set serve.proxy_hops",
                         net, net.num_addresses)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()]


def create_app(settings: Settings, *, tokens: TokenStore | None = None,
               recorder: AccessRecorder | None = None) -> FastAPI:
    """The API over the trail that ``settings`` points at; the recorder and the metrics listener live with the app."""
    tokens = tokens or TokenStore(settings.serve_tokens_file)
    recorder = recorder or AccessRecorder(settings)
    throttle = Throttle(settings.serve.anonymous_rate_limit, settings.serve.anonymous_rate_limit_total)
    _warn_broad_proxies(settings)
    metrics = Metrics()
    metrics.backlog.set_function(lambda: recorder.backlog)
    metrics.emitter.set_function(lambda: 1 if recorder.alive else 0)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(recorder.start)
        server = None
        if settings.serve.metrics:
            server = serve_metrics(settings.serve.metrics_port, metrics.registry, "serve.metrics_port",
                                   host=settings.metrics_host)
            app.state.metrics_port = server.server_port
            _log.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.server_port)
        try:
            yield
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()
            await asyncio.to_thread(recorder.close)

    app = FastAPI(
        title="sealtrail admin API",
        version=_version(),
        description="Search, read and export the tamper-evident audit trail. Every call is itself recorded "
                    "in the trail as an access event. Errors are RFC 9457 problem documents. Calls without a "
                    "valid token are rate limited (429) and recorded in short form; bodies above "
                    f"{settings.serve.max_body_bytes} bytes get 413.",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.tokens = tokens
    app.state.recorder = recorder
    app.state.metrics = metrics
    app.state.metrics_port = None
    app.include_router(build_router(settings), prefix="/v1")

    @app.get("/healthz", summary="Liveness (no token, not recorded)", operation_id="health", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

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
    async def _misconfigured(request: Request, exc: ConfigError) -> Any:
        # the request was checked by the routes; what is left is the server's own settings or files,
        # whose names and paths are for its log, not for any caller
        _log.error("%s %s failed on the server's configuration: %s", request.method, request.url.path, exc)
        return problem(500, "the server is misconfigured; its log has the details", instance=request.url.path)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Any:  # calls the gate does not see (/healthz)
        _log.exception("unhandled error in %s %s", request.method, request.url.path)
        return problem(500, "internal error; the server log has the details", instance=request.url.path)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_document(add_problem_schema(FastAPI.openapi(app)))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(Gate, recorder=recorder, metrics=metrics, tokens=tokens, throttle=throttle, settings=settings)
    return app
