"""The workload run on the naive design: PostgreSQL and one poller process, nothing else."""

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from bench.baseline import read_scans
from bench.config import BenchConfig
from bench.drive import Drive, drive
from bench.figures import Distribution, RunFigures
from bench.measure import record_drive, record_ends
from bench.procs import ProcessSet
from bench.sinks import DirectSink
from bench.stack import ROOT, EmbeddedPostgres, child_env, make_data_dir, remove_data_dir
from store.db import create_engine, create_sessionmaker


def run_baseline(config: BenchConfig, console: Console, run_id: str) -> RunFigures:
    """The naive design: PostgreSQL and one poller process, nothing else."""
    data_dir = make_data_dir("baseline")
    postgres = EmbeddedPostgres(data_dir, "baseline")
    poller: subprocess.Popen[bytes] | None = None
    failed = True
    try:
        console.print(f"starting PostgreSQL and the baseline poller in {data_dir} …")
        database_url = postgres.start()
        scans = data_dir / "scans.jsonl"
        command = [sys.executable, "-m", "bench.baseline", "--database-url", database_url]
        command += ["--interval", str(config.check_interval), "--out", str(scans)]
        with open(data_dir / "poller.log", "ab") as output:
            poller = subprocess.Popen(
                command, cwd=ROOT, env=child_env(), stdout=output, stderr=output
            )
        _wait_for_first_scan(poller, scans)
        pids = {"poller": poller.pid, "postgres": postgres.pid}
        figures, result = asyncio.run(
            _baseline(config, database_url, pids, poller, console, run_id)
        )
        _stop_poller(poller)
        windows = {"run": result.window}
        if result.steady_window is not None:
            windows["steady"] = result.steady_window
        found = read_scans(scans, windows)
        figures.checks = found.checks_in_window["run"]
        figures.checks_by_kind = {"scan": figures.checks}
        if result.steady_window is not None:
            begin, end = result.steady_window
            steady_checks = found.checks_in_window["steady"]
            figures.steady_window = (round(begin, 3), round(end, 3))
            figures.account_steady_cpu(result.steady_cpu_seconds, end - begin, steady_checks)
        figures.tick_lateness_ms = Distribution.of(found.lateness_ms)
        figures.notes.append(f"{found.scans} scans; lateness is check start minus scan due time")
        figures.account_cpu(result.cpu_seconds)
        failed = False
        return figures
    finally:
        if poller is not None:
            _stop_poller(poller)
        postgres.stop()
        remove_data_dir(data_dir, keep=config.keep_data or failed)


def _wait_for_first_scan(poller: subprocess.Popen[bytes], scans: Path) -> None:
    """The poller's start-up (imports, connecting) is not part of its idle or working cost."""
    deadline = time.monotonic() + 60
    while not (scans.exists() and scans.stat().st_size):
        if poller.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the baseline poller did not start; see poller.log")
        time.sleep(0.1)


def _stop_poller(poller: subprocess.Popen[bytes]) -> None:
    if poller.poll() is None:
        poller.send_signal(signal.SIGTERM)
        try:
            poller.wait(timeout=30)
        except subprocess.TimeoutExpired:
            poller.kill()
            poller.wait()


async def _baseline(
    config: BenchConfig,
    database_url: str,
    pids: dict[str, int],
    poller: subprocess.Popen[bytes],
    console: Console,
    run_id: str,
) -> tuple[RunFigures, Drive]:
    prefix = f"b{run_id}"
    figures = RunFigures(design="baseline", sessions_planned=config.sessions)
    engine = create_engine(database_url, config.concurrency)
    sink = DirectSink(create_sessionmaker(engine), config.concurrency)
    try:
        result = await drive(
            label="baseline",
            config=config,
            sink=sink,
            processes=ProcessSet(pids),
            sessionmaker=create_sessionmaker(engine),
            prefix=prefix,
            console=console,
            exited=lambda: "poller" if poller.poll() is not None else None,
        )
        record_drive(figures, result)
        console.print("measuring: session ends, loss-check query …")
        await record_ends(figures, engine, prefix, result, config)
    finally:
        await sink.aclose()
        await engine.dispose()
    return figures, result
