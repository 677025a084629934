"""What the routers need from the running app, as FastAPI dependencies.

The API's lifespan builds one :class:`Services`: every service class, sharing the Temporal
client, the session factory, the settings and the metrics registry. These aliases hand them
to the endpoints. They are ``async`` because FastAPI runs a plain ``def`` dependency in a
worker thread, a thread hop on every request.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from starter.runtime.metrics import Metrics
from starter.runtime.settings import Settings
from starter.services.accounts import AccountService
from starter.services.alerts import AlertService
from starter.services.audit import AuditService
from starter.services.jobs import JobService
from starter.services.key_cache import KeyCache
from starter.services.keys import KeyService
from starter.services.kill_switch import KillSwitchService
from starter.services.marks import MarkService
from starter.services.notifications import NotificationService
from starter.services.orders import OrderService
from starter.services.performance import PerformanceService
from starter.services.sessions import SessionService
from starter.services.trades import TradeService


@dataclass(frozen=True)
class Services:
    """One instance of every service, built once per app by its lifespan."""

    client: Client
    settings: Settings
    metrics: Metrics
    sessions: SessionService
    trades: TradeService
    orders: OrderService
    performance: PerformanceService
    marks: MarkService
    keys: KeyService
    notifications: NotificationService
    jobs: JobService
    kill_switch: KillSwitchService
    alerts: AlertService
    audit: AuditService
    accounts: AccountService

    @classmethod
    def build(
        cls,
        client: Client,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: Metrics,
    ) -> "Services":
        return cls(
            client=client,
            settings=settings,
            metrics=metrics,
            sessions=SessionService(client, sessionmaker, settings, metrics=metrics),
            trades=TradeService(client, sessionmaker, settings, metrics),
            orders=OrderService(sessionmaker, metrics),
            performance=PerformanceService(sessionmaker),
            marks=MarkService(client, sessionmaker, settings, metrics),
            keys=KeyService(sessionmaker, KeyCache(settings.api_key_cache_seconds)),
            notifications=NotificationService(sessionmaker),
            jobs=JobService(client, sessionmaker, settings),
            kill_switch=KillSwitchService(client, sessionmaker, settings, metrics),
            alerts=AlertService(sessionmaker),
            audit=AuditService(sessionmaker),
            accounts=AccountService(sessionmaker),
        )


async def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _client(request: Request) -> Client:
    return (await _services(request)).client


async def _settings(request: Request) -> Settings:
    """The app's settings; there before the lifespan runs, so auth can read them."""
    settings: Settings = request.app.state.settings
    return settings


async def _metrics(request: Request) -> Metrics:
    """The app's own registry, made by its lifespan (none is shared between apps)."""
    return (await _services(request)).metrics


async def _sessions(request: Request) -> SessionService:
    return (await _services(request)).sessions


async def _trades(request: Request) -> TradeService:
    return (await _services(request)).trades


async def _orders(request: Request) -> OrderService:
    return (await _services(request)).orders


async def _performance(request: Request) -> PerformanceService:
    return (await _services(request)).performance


async def _marks(request: Request) -> MarkService:
    return (await _services(request)).marks


async def _keys(request: Request) -> KeyService:
    return (await _services(request)).keys


async def _notifications(request: Request) -> NotificationService:
    return (await _services(request)).notifications


async def _jobs(request: Request) -> JobService:
    return (await _services(request)).jobs


async def _kill_switch(request: Request) -> KillSwitchService:
    return (await _services(request)).kill_switch


async def _alerts(request: Request) -> AlertService:
    return (await _services(request)).alerts


async def _audit(request: Request) -> AuditService:
    return (await _services(request)).audit


async def _accounts(request: Request) -> AccountService:
    return (await _services(request)).accounts


ClientDep = Annotated[Client, Depends(_client)]
SettingsDep = Annotated[Settings, Depends(_settings)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
SessionsDep = Annotated[SessionService, Depends(_sessions)]
TradesDep = Annotated[TradeService, Depends(_trades)]
OrdersDep = Annotated[OrderService, Depends(_orders)]
PerformanceDep = Annotated[PerformanceService, Depends(_performance)]
MarksDep = Annotated[MarkService, Depends(_marks)]
KeysDep = Annotated[KeyService, Depends(_keys)]
NotificationsDep = Annotated[NotificationService, Depends(_notifications)]
JobsDep = Annotated[JobService, Depends(_jobs)]
KillSwitchDep = Annotated[KillSwitchService, Depends(_kill_switch)]
AlertsDep = Annotated[AlertService, Depends(_alerts)]
AuditDep = Annotated[AuditService, Depends(_audit)]
AccountsDep = Annotated[AccountService, Depends(_accounts)]
