"""What the operations routers need from the running app, as FastAPI dependencies.

The API's lifespan builds one :class:`SessionService` holding the Temporal client, the
session factory and the settings, and the :class:`KeyService` with its key cache; these
aliases hand them to the endpoints. They are ``async`` because FastAPI runs a plain ``def``
dependency in a worker thread, a thread hop on every request.
"""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from starter.runtime.metrics import Metrics
from starter.runtime.settings import Settings
from starter.services.keys import KeyService
from starter.services.sessions import SessionService


async def _service(request: Request) -> SessionService:
    service: SessionService = request.app.state.service
    return service


async def _client(request: Request) -> Client:
    return (await _service(request)).client


async def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    return (await _service(request)).sessionmaker


async def _settings(request: Request) -> Settings:
    return (await _service(request)).settings


async def _metrics(request: Request) -> Metrics:
    """The app's own registry, made by its lifespan (none is shared between apps)."""
    metrics: Metrics = request.app.state.metrics
    return metrics


async def _keys(request: Request) -> KeyService:
    keys: KeyService = request.app.state.keys
    return keys


ClientDep = Annotated[Client, Depends(_client)]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(_sessionmaker)]
SettingsDep = Annotated[Settings, Depends(_settings)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
ServiceDep = Annotated[SessionService, Depends(_service)]
KeysDep = Annotated[KeyService, Depends(_keys)]
