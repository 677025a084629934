"""The fault suite's plumbing: real processes started and killed by the tests, and a plugin
that collects each scenario's figures into a JSON file for ``python -m tests.faults.summary``."""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pluggy
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from starter.runtime.settings import Settings
from starter.services.sessions import SessionService
from tests.integration import conftest as integration
from worker import create_worker

ROOT = Path(__file__).resolve().parents[2]
SUMMARY_ENV = "TRADING_FAULTS_SUMMARY"
DEFAULT_SUMMARY = ROOT / ".data" / "faults-summary.json"
TERMINAL = {"EXPIRED", "LOSS_LIMIT", "TERMINATED"}
# Lines a worker may log at ERROR on purpose in a scenario; anything else counts as unhandled.
_ERROR_LINE = re.compile(r'"level": "(ERROR|CRITICAL)"|Traceback \(most recent call last\)')

_results: dict[str, dict[str, Any]] = {}

# The integration suite's session-wide dev server and client, shared with this directory.
dev_server = integration.dev_server
dev_client = integration.dev_client


# Audit actions that happen exactly once in every session that was activated and ended.
ONCE_PER_SESSION = (
    "session.activated",
    "algorithm.halted",
    "orders.cancelled",
    "positions.flattened",
    "portfolio.updated",
    "session.ended",
)


def summary_path() -> Path:
    return Path(os.environ.get(SUMMARY_ENV) or DEFAULT_SUMMARY)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """What the scenario measured; the test fills it in, the plugin adds the outcome."""
    record: dict[str, Any] = {
        "scenario": request.node.name,
        "sessions": 0,
        "sessions_lost": 0,
        "duplicated_effects": 0,
        "unhandled_errors": 0,
        "started": time.monotonic(),
    }
    _results[request.node.nodeid] = record
    return record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    record = _results.get(item.nodeid)
    if record is None or (report.when != "call" and report.passed):
        return
    if report.when == "call" or report.failed:
        record["outcome"] = report.outcome if not report.failed else "failed"
        record["seconds"] = round(time.monotonic() - record.pop("started", time.monotonic()), 1)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _results:
        return
    path = summary_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    scenarios = [
        {k: v for k, v in record.items() if k != "started"} for record in _results.values()
    ]
    path.write_text(
        json.dumps(
            {"generated_at": datetime.now(UTC).isoformat(), "scenarios": scenarios}, indent=2
        )
    )


# --- processes ----------------------------------------------------------------------------


def stack_env(
    temporal_address: str, database_url: str, task_queue: str, **extra: str
) -> dict[str, str]:
    """Environment of a worker or API subprocess: only the environment configures it."""
    env = {
        **os.environ,
        "TRADING_TEMPORAL_ADDRESS": temporal_address,
        "TRADING_DATABASE_URL": database_url,
        "DATABASE_URL": database_url,
        "TRADING_TEMPORAL_TASK_QUEUE": task_queue,
        # Several workers on one host: no fixed metrics ports.
        "TRADING_WORKER_METRICS_ADDRESS": "",
        "TRADING_WORKER_APP_METRICS_ADDRESS": "",
        "TRADING_AUTH_ENABLED": "false",
        "TRADING_LOG_FORMAT": "json",
    }
    env.update(extra)
    return env


class Proc:
    """A subprocess whose output goes to a log file the test reads afterwards."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("ab")
        self.popen = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT
        )

    def kill9(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._out.close()

    def error_lines(self, expected: tuple[str, ...] = ()) -> list[str]:
        lines = self.log.read_text(errors="replace").splitlines()
        return [
            line
            for line in lines
            if _ERROR_LINE.search(line) and not any(e in line for e in expected)
        ]


def start_worker(env: dict[str, str], log: Path) -> Proc:
    return Proc([sys.executable, str(ROOT / "worker.py")], env, log)


def start_api(env: dict[str, str], port: int, log: Path) -> Proc:
    args = [sys.executable, "-m", "uvicorn", "starter.api.app:create_app", "--factory"]
    return Proc([*args, "--port", str(port), "--log-level", "warning"], env, log)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Every process a test starts; stopped at the end whatever happened."""
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


# --- waiting and reading --------------------------------------------------------------------


async def eventually(
    probe: Callable[[], Awaitable[Any]], timeout: float, what: str, interval: float = 0.2
) -> Any:
    """Poll until ``probe`` returns something truthy; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


async def scalar(sm: async_sessionmaker[AsyncSession], sql: str, **params: Any) -> Any:
    async with sm() as db:
        return (await db.execute(text(sql), params)).scalar()


async def session_status(sm: async_sessionmaker[AsyncSession], session_id: str) -> str | None:
    status: str | None = await scalar(
        sm, "SELECT status FROM trading_sessions WHERE id = :s", s=session_id
    )
    return status


async def duplicated_effects(sm: async_sessionmaker[AsyncSession], session_ids: list[str]) -> int:
    """Effects recorded more than once: closing fills per symbol, settlements, audit actions."""
    async with sm() as db:
        fills = (
            await db.execute(
                text(
                    "SELECT count(*) FROM (SELECT session_id, symbol FROM fills "
                    "WHERE session_id = ANY(:ids) AND fill_id LIKE 'flatten:%' "
                    "GROUP BY 1, 2 HAVING count(*) > 1) d"
                ),
                {"ids": session_ids},
            )
        ).scalar_one()
        audit = (
            await db.execute(
                text(
                    "SELECT count(*) FROM (SELECT session_id, action FROM audit_events "
                    "WHERE session_id = ANY(:ids) AND action IN ('session.activated', "
                    "'algorithm.halted', 'orders.cancelled', 'positions.flattened', "
                    "'portfolio.updated', 'session.ended') "
                    "GROUP BY 1, 2 HAVING count(*) > 1) d"
                ),
                {"ids": session_ids},
            )
        ).scalar_one()
    return int(fills) + int(audit)


@pytest.fixture
def task_queue() -> str:
    return f"faults-{uuid.uuid4()}"


@pytest.fixture
def service(
    dev_client: Client,
    database_url: str,
    dev_server: str,
    task_queue: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> SessionService:
    """What the API calls, in-process, on this test's task queue."""
    settings = Settings(
        temporal_address=dev_server, database_url=database_url, temporal_task_queue=task_queue
    )
    return SessionService(dev_client, sessionmaker, settings)


@pytest.fixture
async def worker(
    dev_client: Client, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> Any:
    """A worker in this process on the test's task queue."""
    async with create_worker(dev_client, task_queue, sessionmaker) as running:
        yield running
