"""The workload run on the product: the embedded stack of ``make run`` or configured endpoints."""

import asyncio
import logging
from collections.abc import Callable

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.config import BenchConfig
from bench.drive import Scrapes, drive
from bench.figures import RunFigures
from bench.kill import KillSwitchPress
from bench.measure import (
    record_crash,
    record_drive,
    record_ends,
    record_histories,
    record_kill,
    record_sweeps,
)
from bench.procs import ProcessSet
from bench.sinks import HttpSink
from bench.stack import (
    EmbeddedStack,
    Endpoints,
)
from starter.runtime.settings import Settings
from starter.runtime.temporal_client import connect
from store.db import create_engine, create_sessionmaker

log = logging.getLogger("bench")


def run_temporal(config: BenchConfig, console: Console, run_id: str) -> RunFigures:
    """The product: the embedded stack of ``make run`` (or the configured endpoints)."""
    if config.api_url is not None:
        return asyncio.run(_temporal(config, _configured(config), console, run_id, None))
    stack = EmbeddedStack(
        config.check_interval,
        config.keep_data,
        config.dynamic_config,
        config.api_workers,
        config.worker_processes,
    )
    failed = True
    try:
        console.print(f"starting the embedded stack in {stack.data_dir} …")
        endpoints = stack.start()
        figures = asyncio.run(_temporal(config, endpoints, console, run_id, stack))
        failed = False
        return figures
    finally:
        console.print("stopping the embedded stack …")
        stack.stop(failed=failed)


def _configured(config: BenchConfig) -> Endpoints:
    settings = Settings()
    database_url = settings.resolved_database_url() if settings.database_url else None
    return Endpoints(
        config.api_url,
        settings.temporal_address,
        database_url,
        config.pids,
        config.api_key,
        config.market_key,
        config.risk_key,
    )


async def _client(endpoints: Endpoints, embedded: bool) -> Client:
    assert endpoints.temporal_address is not None
    if embedded:
        return await Client.connect(
            endpoints.temporal_address, data_converter=pydantic_data_converter
        )
    return await connect(Settings())


async def _temporal(
    config: BenchConfig,
    endpoints: Endpoints,
    console: Console,
    run_id: str,
    stack: EmbeddedStack | None,
) -> RunFigures:
    assert endpoints.api_url is not None
    prefix = f"b{run_id}"
    figures = RunFigures(design="temporal", sessions_planned=config.sessions)
    engine = create_engine(endpoints.database_url, 4) if endpoints.database_url else None
    sink = HttpSink(
        endpoints.api_url,
        config.concurrency,
        endpoints.api_key,
        endpoints.market_key,
        endpoints.risk_key,
    )
    press = None
    if config.kill_switch_at is not None:
        if engine is None:
            figures.notes.append("no DATABASE_URL: the kill switch is not pressed")
        else:
            press = _press(config, sink, create_sessionmaker(engine), prefix)
    try:
        result = await drive(
            label="Temporal",
            config=config,
            sink=sink,
            processes=ProcessSet(endpoints.pids),
            sessionmaker=create_sessionmaker(engine) if engine else None,
            prefix=prefix,
            console=console,
            exited=stack.exited if stack else lambda: None,
            scrapes=Scrapes(endpoints.worker_metrics_urls, f"{endpoints.api_url}/metrics"),
            press=press,
        )
        record_drive(figures, result)
        record_sweeps(figures, result, config)
        rate = result.counters.start_rate
        figures.start_rate_per_s = round(rate, 1) if rate is not None else None
        console.print("measuring: session ends, loss-check query, workflow histories …")
        if engine is not None:
            await record_ends(figures, engine, prefix, result, config)
            await record_crash(figures, engine, prefix, result)
            await record_kill(figures, engine, result)
        else:
            figures.notes.append("no DATABASE_URL: expiry, breach and query figures skipped")
        if endpoints.temporal_address is not None:
            client = await _client(endpoints, stack is not None)
            await record_histories(figures, client, result, config.history_sample)
        else:
            figures.notes.append("no TRADING_TEMPORAL_ADDRESS: history figures skipped")
        figures.account_cpu(result.cpu_seconds)
        if stack is None:
            failed = await _terminate_open(sink, result.counters.started)
            if failed:
                figures.notes.append(f"{failed} sessions could not be terminated after the run")
        else:
            figures.log_findings = stack.findings()
    finally:
        await sink.aclose()
        if engine is not None:
            await engine.dispose()
    return figures


def _press(
    config: BenchConfig,
    sink: HttpSink,
    sessionmaker: async_sessionmaker[AsyncSession],
    prefix: str,
) -> Callable[[float], KillSwitchPress]:
    """The kill switch of ``--kill-switch-at``, pressed that long after the run's origin."""
    assert config.kill_switch_at is not None
    after = config.kill_switch_at

    def make(origin: float) -> KillSwitchPress:
        return KillSwitchPress(
            sink, sessionmaker, prefix, origin + after, config.kill_scope, config.kill_wait
        )

    return make


async def _terminate_open(sink: HttpSink, session_ids: list[str]) -> int:
    """On a configured stack, leave nothing of ours running (ended sessions answer 409).

    Returns how many could not be asked to end.
    """
    answers = await asyncio.gather(
        *(sink.terminate(session_id) for session_id in session_ids), return_exceptions=True
    )
    return sum(isinstance(answer, BaseException) for answer in answers)
