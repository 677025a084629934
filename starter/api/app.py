"""The HTTP API. Run it with ``uvicorn starter.api.app:create_app --factory``."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from starter.api import (
    accounts,
    alerts,
    audit,
    codec,
    health,
    jobs,
    keys,
    kill_switch,
    marks,
    metrics,
    notifications,
    orders,
    performance,
    sessions,
    trades,
)
from starter.api.auth import Permission, require, require_for_session
from starter.api.deps import Services
from starter.api.errors import ERRORS, install_error_handlers
from starter.api.limits import BodySizeLimit, install_cors
from starter.api.schemas import MAX_MARKS_BATCH_BYTES
from starter.api.venue import paper_venue
from starter.runtime.logging_setup import configure_logging
from starter.runtime.metrics import Metrics
from starter.runtime.settings import Settings
from starter.runtime.temporal_client import connect
from store.db import create_engine, create_sessionmaker


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app: its lifespan connects Temporal and PostgreSQL and builds the services."""
    settings = settings or Settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url(), settings.database_pool_size)
        client = await connect(settings)
        sessionmaker = create_sessionmaker(engine)
        app.state.services = Services.build(client, sessionmaker, settings, Metrics())
        # The paper broker's dead-man's switch fires here, without Temporal or a worker.
        async with paper_venue(sessionmaker, settings.paper_venue_tick_seconds):
            yield
        await engine.dispose()

    app = FastAPI(
        title="Trading sessions",
        description="Start, inspect and end trading sessions; each is a Temporal workflow.",
        version="0.1.0",
        lifespan=lifespan,
        responses=ERRORS,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(sessions.router)
    app.include_router(trades.router)
    # Probes and scrapes stay open (load balancers and Prometheus carry no key).
    for open_route in (health.router, metrics.router):
        app.include_router(open_route)
    operator_only = [Depends(require(Permission.OPERATE))]
    app.include_router(jobs.router, dependencies=operator_only)
    # Routes of a session's trading: orders behind the gate, performance figures.
    by_method = {"GET": Permission.READ_ORDERS, "POST": Permission.INGEST}
    app.include_router(orders.router, dependencies=[Depends(require_for_session(by_method))])
    app.include_router(
        performance.router, dependencies=[Depends(require_for_session(Permission.READ))]
    )
    # Notifications (list, SSE stream) and webhook subscriptions; brings its LISTEN lifespan.
    app.include_router(notifications.router, dependencies=operator_only)
    app.include_router(alerts.router)
    app.include_router(audit.router)
    app.include_router(keys.router)
    app.include_router(marks.router)
    app.include_router(codec.router)
    app.include_router(kill_switch.router)
    app.include_router(accounts.router)
    install_cors(app, settings)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_bytes,
        per_path={"/marks": max(settings.max_request_bytes, MAX_MARKS_BATCH_BYTES)},
    )
    return app
