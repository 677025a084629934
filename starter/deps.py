"""What the operations routers need from the running app, as FastAPI dependencies.

The API's lifespan builds one :class:`SessionService` holding the Temporal client, the
session factory and the settings; these aliases hand its parts to the endpoints.
"""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.metrics import Metrics
from starter.service import SessionService
from starter.settings import Settings


def _service(request: Request) -> SessionService:
    service: SessionService = request.app.state.service
    return service


def _client(request: Request) -> Client:
    return _service(request).client


def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    return _service(request).sessionmaker


def _settings(request: Request) -> Settings:
    return _service(request).settings


def _metrics(request: Request) -> Metrics:
    """The app's metrics, made on first use: one registry per app, none shared globally."""
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is None:
        metrics = request.app.state.metrics = Metrics()
    return metrics


ClientDep = Annotated[Client, Depends(_client)]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(_sessionmaker)]
SettingsDep = Annotated[Settings, Depends(_settings)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
ServiceDep = Annotated[SessionService, Depends(_service)]
