"""The HTTP API. Run it with ``uvicorn starter.api.app:create_app --factory``."""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.messages import SessionView
from domain.status import SessionStatus
from domain.text import Identifier, clean_text
from starter.api import codec as codec_api
from starter.api import health, jobs, metrics
from starter.api import keys as keys_api
from starter.api import marks as marks_api
from starter.api import notifications as notifications_api
from starter.api import orders as orders_api
from starter.api import performance as performance_api
from starter.api.auth import (
    ChangeSession,
    IngestTrades,
    ListSessions,
    Permission,
    ReadGate,
    ReadSession,
    StartSession,
    TerminateSession,
    check_account,
    require,
    require_for_session,
)
from starter.api.body import StrictJsonRoute, body_error
from starter.api.deps import ServiceDep
from starter.api.limits import BodySizeLimit, install_cors
from starter.api.schemas import (
    MAX_MARKS_BATCH_BYTES,
    ErrorResponse,
    ExtendDeadlineRequest,
    FillOut,
    FillRequest,
    GateChangeRequest,
    GateOut,
    MarkOut,
    MarkRequest,
    RetryCleanupBody,
    SessionIdPath,
    SessionOut,
    SetLossLimitRequest,
    StartSessionRequest,
    TerminateRequest,
)
from starter.runtime.logging_setup import configure_logging
from starter.runtime.metrics import Metrics
from starter.runtime.settings import Settings
from starter.runtime.temporal_client import connect
from starter.services import trades as trades_service
from starter.services.errors import ServiceError
from starter.services.key_cache import KeyCache
from starter.services.keys import KeyService
from starter.services.principals import Principal
from starter.services.sessions import SessionService
from store.db import create_engine, create_sessionmaker

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 413, 422, 503)
}
# The error code of each status Starlette answers by itself (routing, methods, limits).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url(), settings.database_pool_size)
        client = await connect(settings)
        app.state.metrics = metrics = Metrics()
        sessionmaker = create_sessionmaker(engine)
        app.state.service = SessionService(client, sessionmaker, settings, metrics=metrics)
        app.state.keys = KeyService(sessionmaker, KeyCache(settings.api_key_cache_seconds))
        yield
        await engine.dispose()

    app = FastAPI(
        title="Trading sessions",
        description="Start, inspect and end trading sessions; each is a Temporal workflow.",
        version="0.1.0",
        lifespan=lifespan,
        responses=ERRORS,
    )
    _install_error_handlers(app)
    app.include_router(_routes())
    # Probes and scrapes stay open (load balancers and Prometheus carry no key).
    for open_route in (health.router, metrics.router):
        app.include_router(open_route)
    operator_only = [Depends(require(Permission.OPERATE))]
    app.include_router(jobs.router, dependencies=operator_only)
    # Routes of a session's trading: orders behind the gate, performance figures.
    by_method = {"GET": Permission.READ_ORDERS, "POST": Permission.INGEST}
    app.include_router(orders_api.router, dependencies=[Depends(require_for_session(by_method))])
    app.include_router(
        performance_api.router, dependencies=[Depends(require_for_session(Permission.READ))]
    )
    # Notifications (list, SSE stream) and webhook subscriptions; brings its LISTEN lifespan.
    app.include_router(notifications_api.router, dependencies=operator_only)
    app.include_router(keys_api.router)
    app.include_router(marks_api.router)
    app.include_router(codec_api.router)
    install_cors(app, settings)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_bytes,
        per_path={"/marks": max(settings.max_request_bytes, MAX_MARKS_BATCH_BYTES)},
    )
    return app


def _error(
    status_code: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    # Messages and fields can quote the caller's input (an unknown key): make them printable.
    shown = None if field is None else clean_text(field, 200)
    body = {"error": {"code": code, "message": clean_text(message, 1000), "field": shown}}
    return JSONResponse(status_code=status_code, content=body, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status_code, exc.code, exc.message, exc.field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown routes (404), wrong methods (405, with Allow), FastAPI's own refusals.
        code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return _error(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        unparsable = body_error(request)  # refused by starter.api.body, after authentication
        if unparsable is not None:
            return _error(400, "malformed_json", unparsable.message, unparsable.field)
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            return _error(400, "malformed_json", "request body is not valid JSON")
        location = [str(part) for part in first["loc"] if part not in ("body", "query", "path")]
        field = ".".join(location) or None
        message = first["msg"] if field is None else f"{field}: {first['msg']}"
        return _error(422, "validation_error", message, field)

    @app.exception_handler(DBAPIError)
    async def unstorable_value(_: Request, exc: DBAPIError) -> JSONResponse:
        # SQLSTATE class 22 is PostgreSQL refusing a value (a NUL byte in text, say): the
        # caller's input, not our fault. The transaction rolled back, so nothing was written.
        if str(getattr(exc.orig, "sqlstate", "")).startswith("22"):
            return _error(
                422,
                "validation_error",
                "a value cannot be stored: text must not "
                "contain NUL characters and numbers must fit their columns",
            )
        raise exc

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the exception; the caller learns nothing about our internals.
        return _error(500, "internal_error", "internal error")


def _routes() -> APIRouter:

    router = APIRouter(prefix="/sessions", tags=["sessions"], route_class=StrictJsonRoute)

    @router.post("", status_code=status.HTTP_201_CREATED)
    async def start_session(
        body: StartSessionRequest,
        service: ServiceDep,
        principal: StartSession,
        response: Response,
        idempotency_key: IdempotencyKey = None,
    ) -> SessionOut:
        """Start a session; repeating it (same id or Idempotency-Key) returns the same one."""
        check_account(principal, body.account_id)
        session, created = await service.start_session(body, idempotency_key)
        if not created:
            response.status_code = status.HTTP_200_OK
        return session

    @router.get("")
    async def list_sessions(
        service: ServiceDep,
        principal: ListSessions,
        status_filter: Annotated[SessionStatus | None, Query(alias="status")] = None,
        account_id: Annotated[Identifier | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[SessionOut]:
        """Sessions, newest first; a trader's key sees its own account's only."""
        if principal.account_id is not None:
            check_account(principal, account_id or principal.account_id)
            account_id = principal.account_id
        return await service.list_sessions(status_filter, account_id, limit, offset)

    @router.get("/{session_id}")
    async def get_session(
        session_id: SessionIdPath, service: ServiceDep, _: ReadSession
    ) -> SessionOut:
        """The stored session, with the workflow's live view while it runs."""
        return await service.get_session(session_id)

    @router.post("/{session_id}/terminate", status_code=status.HTTP_202_ACCEPTED)
    async def terminate_session(
        session_id: SessionIdPath,
        body: TerminateRequest,
        service: ServiceDep,
        principal: TerminateSession,
    ) -> SessionOut:
        """Ask the session to end now; it winds down and ends TERMINATED."""
        return await service.terminate(session_id, _as(principal, body))

    @router.post("/{session_id}/extend")
    async def extend_deadline(
        session_id: SessionIdPath,
        body: ExtendDeadlineRequest,
        service: ServiceDep,
        principal: ChangeSession,
    ) -> SessionView:
        """Move the deadline later (Temporal update `extend_deadline`); 422 if refused."""
        return await service.extend_deadline(session_id, _as(principal, body))

    @router.post("/{session_id}/loss-limit")
    async def set_loss_limit(
        session_id: SessionIdPath,
        body: SetLossLimitRequest,
        service: ServiceDep,
        principal: ChangeSession,
    ) -> SessionView:
        """Change the loss limit (update `set_loss_limit`); below the loss it ends at once."""
        return await service.set_loss_limit(session_id, _as(principal, body))

    @router.post("/{session_id}/pause", status_code=status.HTTP_202_ACCEPTED)
    async def pause_session(
        session_id: SessionIdPath,
        body: GateChangeRequest,
        service: ServiceDep,
        principal: ChangeSession,
    ) -> SessionOut:
        """Close the trading gate without ending the session; the clock keeps running."""
        return await service.set_paused(session_id, True, _as(principal, body))

    @router.post("/{session_id}/resume", status_code=status.HTTP_202_ACCEPTED)
    async def resume_session(
        session_id: SessionIdPath,
        body: GateChangeRequest,
        service: ServiceDep,
        principal: ChangeSession,
    ) -> SessionOut:
        """Open the trading gate again."""
        return await service.set_paused(session_id, False, _as(principal, body))

    @router.post("/{session_id}/retry-cleanup", status_code=status.HTTP_202_ACCEPTED)
    async def retry_cleanup(
        session_id: SessionIdPath,
        body: RetryCleanupBody,
        service: ServiceDep,
        principal: ChangeSession,
    ) -> SessionOut:
        """Resume a termination that stopped in CLEANUP_FAILED (signal `retry_cleanup`)."""
        return await service.retry_cleanup(session_id, _as(principal, body))

    @router.get("/{session_id}/gate")
    async def trading_gate(session_id: SessionIdPath, service: ServiceDep, _: ReadGate) -> GateOut:
        """Pre-trade check: may the session's algorithm place an order now?"""
        return await service.gate(session_id)

    @router.post("/{session_id}/fills", status_code=status.HTTP_201_CREATED)
    async def record_fill(
        session_id: SessionIdPath,
        body: FillRequest,
        service: ServiceDep,
        response: Response,
        _: IngestTrades,
    ) -> FillOut:
        """Record a fill once (a repeated fill id returns the stored one) and check at once."""
        fill, created = await trades_service.record_fill(service, session_id, body)
        if not created:
            response.status_code = status.HTTP_200_OK
        return fill

    @router.post("/{session_id}/marks", status_code=status.HTTP_201_CREATED)
    async def record_mark(
        session_id: SessionIdPath, body: MarkRequest, service: ServiceDep, _: IngestTrades
    ) -> MarkOut:
        """Record a mark price; open positions are valued at the latest mark."""
        return await trades_service.record_mark(service, session_id, body)

    return router


_Acting = TypeVar(
    "_Acting",
    TerminateRequest,
    ExtendDeadlineRequest,
    SetLossLimitRequest,
    GateChangeRequest,
    RetryCleanupBody,
)


def _as(principal: Principal, body: _Acting) -> _Acting:
    """The body with the key's identity as actor: the body's own actor is only a display name."""
    return body.model_copy(update={"actor": principal.recorded_actor(body.actor)})
