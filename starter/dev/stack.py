"""``make run``: the whole embedded stack in the foreground; Ctrl-C stops every part.

PostgreSQL (from a wheel) and the Temporal dev server keep their data in ``.data/``, so
running it again resumes every session that was active.
"""

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from starter.api.schemas import IssuedKey
from starter.dev import bootstrap_key
from starter.dev.devserver import start_dev_server
from starter.runtime.logging_setup import configure_logging
from starter.runtime.settings import ENV_PREFIX, Settings
from starter.services.keys import KeyService
from store.db import create_engine, create_sessionmaker
from store.embedded import stop_embedded_postgres
from store.migrate import upgrade

log = logging.getLogger("dev")
ROOT = Path(__file__).resolve().parents[2]  # the checkout: worker.py, .data/


class Stack:
    """Children started in order and stopped in reverse order."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def add(self, name: str, process: subprocess.Popen[bytes]) -> None:
        self.children.append((name, process))

    def exited(self) -> str | None:
        return next((name for name, p in self.children if p.poll() is not None), None)

    def stop(self) -> None:
        for name, process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGINT if name != "temporal" else signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop in time; killing it", name)
                    process.kill()


def main() -> int:
    settings = Settings()
    configure_logging(settings)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    embedded_db = settings.database_url is None
    database_url = settings.resolved_database_url()
    upgrade(database_url)
    log.info(
        "database ready (%s)", "embedded, " + str(data_dir / "pg") if embedded_db else "external"
    )
    _bootstrap_admin_key(database_url, data_dir)

    stack = Stack()
    stopping = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if settings.uses_dev_temporal:
            stack.add(
                "temporal",
                start_dev_server(
                    data_dir / "temporal.db",
                    settings.dev_temporal_port,
                    settings.dev_ui_port,
                    log_file=data_dir / "temporal.log",
                ),
            )
        env = {
            **os.environ,
            f"{ENV_PREFIX}DATABASE_URL": database_url,
            f"{ENV_PREFIX}TEMPORAL_ADDRESS": settings.resolved_temporal_address,
        }
        for n in range(settings.worker_processes):
            worker_env = {**env, **_worker_metrics_env(settings, n)}
            name = "worker" if n == 0 else f"worker-{n + 1}"
            stack.add(
                name, subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=worker_env)
            )
        api_command = [
            sys.executable,
            "-m",
            "uvicorn",
            "starter.api.app:create_app",
            "--factory",
            "--host",
            settings.api_host,
            "--port",
            str(settings.api_port),
            # Several processes: uvicorn supervises them and stops them all on SIGINT.
            "--workers",
            str(settings.api_workers),
            "--log-level",
            "warning",
        ]
        stack.add("api", subprocess.Popen(api_command, env=env, cwd=ROOT))
        _print_urls(settings)
        while not stopping:
            crashed = stack.exited()
            if crashed is not None:
                log.error("%s exited unexpectedly; stopping the stack", crashed)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        print("\nstopping…", flush=True)  # noqa: T201
        stack.stop()
        if embedded_db:
            stop_embedded_postgres(settings.data_dir)
        print("stopped; state is kept in", data_dir, flush=True)  # noqa: T201


def _bootstrap_admin_key(database_url: str, data_dir: Path) -> None:
    """On the first start, issue an admin key; only its hash is stored in the database.

    The key goes to a 0600 file in the data dir and to the terminal, never to the logs nor
    to a redirected stdout (see ``starter.dev.bootstrap_key``).
    """

    async def issue() -> IssuedKey | None:
        engine = create_engine(database_url, pool_size=1)
        try:
            return await KeyService(create_sessionmaker(engine)).bootstrap_admin()
        finally:
            await engine.dispose()

    issued = asyncio.run(issue())
    if issued is not None:
        path = bootstrap_key.write_key_file(data_dir, issued.api_key)
        bootstrap_key.announce(issued.key_id, issued.api_key, path)


def _worker_metrics_env(settings: Settings, n: int) -> dict[str, str]:
    """Worker ``n``'s metrics addresses: the configured ports shifted by 2n (the first keeps
    them), so several workers on this host do not fight over one port."""
    env = {}
    for key, address in (
        ("WORKER_METRICS_ADDRESS", settings.worker_metrics_address),
        ("WORKER_APP_METRICS_ADDRESS", settings.worker_app_metrics_address),
    ):
        if address:
            host, _, port = address.rpartition(":")
            env[f"{ENV_PREFIX}{key}"] = f"{host}:{int(port) + 2 * n}"
    return env


def _print_urls(settings: Settings) -> None:
    api = f"http://{settings.api_host}:{settings.api_port}"
    lines = [
        "",
        "Trading sessions stack is up:",
        f"  API           {api}   (OpenAPI docs: {api}/docs)",
        f"  Temporal      {settings.resolved_temporal_address}",
    ]
    if settings.uses_dev_temporal:
        lines.append(f"  Temporal UI   http://127.0.0.1:{settings.dev_ui_port}")
    for n in range(settings.worker_processes):
        metrics = _worker_metrics_env(settings, n)
        for name, key in (
            ("Metrics (SDK)", "WORKER_METRICS_ADDRESS"),
            ("Metrics (app)", "WORKER_APP_METRICS_ADDRESS"),
        ):
            if address := metrics.get(f"{ENV_PREFIX}{key}", ""):
                lines.append(f"  {name} http://{address}/metrics")
    lines += ["Press Ctrl-C to stop.", ""]
    print("\n".join(lines), flush=True)  # noqa: T201


if __name__ == "__main__":
    sys.exit(main())
