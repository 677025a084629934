"""``sessionctl alerts``, ``ack``, ``audit`` and ``top``: the operator's desk.

Alerts and the audit read PostgreSQL only; ``top`` adds the task queue (Temporal) and each
process's ``/metrics``.
"""

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, TypeVar

import httpx
import typer
from rich.console import Console
from rich.live import Live
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.alerts import AlertState
from starter.api.schemas_operations import AlertOut
from starter.cli import render_operations as view
from starter.cli.runner import (
    EXIT_INVALID,
    POOL_SIZE,
    connect_temporal,
    default_actor,
    fail,
    run,
)
from starter.runtime.settings import Settings
from starter.services.alerts import AlertService
from starter.services.audit import AuditService, ExportFormat
from starter.services.load import FleetLoad, LoadService, default_targets
from store.alerts import AlertFilter
from store.audit import AuditQuery
from store.db import create_engine, create_sessionmaker

T = TypeVar("T")
Sessionmaker = async_sessionmaker[AsyncSession]


def _with_database(work: Callable[[Sessionmaker], Awaitable[T]]) -> T:
    async def main(settings: Settings) -> T:
        engine = create_engine(settings.resolved_database_url(), POOL_SIZE)
        try:
            return await work(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    return run(main)


def alerts(
    kind: Annotated[str | None, typer.Option(help="Only this kind (cleanup_failed, ...).")] = None,
    session: Annotated[str | None, typer.Option(help="Only this session's.")] = None,
    state: Annotated[
        str, typer.Option(help="open, acknowledged or all.", case_sensitive=False)
    ] = "open",
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
) -> None:
    """Alerts as a table, newest first (open ones unless --state says otherwise)."""
    if state not in ("open", "acknowledged", "all"):
        fail("--state: open, acknowledged or all", EXIT_INVALID)
    where = AlertFilter(
        kind=kind, session_id=session, state=None if state == "all" else AlertState(state)
    )
    page = _with_database(lambda sm: AlertService(sm).page(where, before_id=None, limit=limit))
    Console().print(view.alerts_table(page.alerts))


def ack(
    alert_id: Annotated[int, typer.Argument(metavar="ALERT_ID", min=1, help="The alert's id.")],
    actor: Annotated[str | None, typer.Option(help="Who, for the audit trail.")] = None,
    reason: Annotated[str | None, typer.Option(help="What was done about it.")] = None,
) -> None:
    """Acknowledge an alert (audited); acknowledging it again keeps the first."""
    who = default_actor(actor)
    alert: AlertOut = _with_database(lambda sm: AlertService(sm).acknowledge(alert_id, who, reason))
    Console().print(view.alerts_table([alert]))


def audit(
    session: Annotated[str | None, typer.Option(help="Only this session's events.")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="From (inclusive), ISO 8601; no zone means UTC.")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="To (exclusive), ISO 8601.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor's.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action.")] = None,
    account: Annotated[str | None, typer.Option(help="Only this account's sessions.")] = None,
    format: Annotated[
        ExportFormat, typer.Option(help="ndjson or csv.", case_sensitive=False)
    ] = ExportFormat.NDJSON,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
) -> None:
    """Export the audit trail as NDJSON or CSV, streamed (a day of a busy desk is fine)."""
    query = AuditQuery(
        since=view.utc(since),
        until=view.utc(until),
        actor=actor,
        action=action,
        account_id=account,
        session_id=session,
    )

    async def export(sm: Sessionmaker) -> int:
        sink = output.open("wb") if output is not None else sys.stdout.buffer
        written = 0
        try:
            async for chunk in AuditService(sm).export(query, format):
                sink.write(chunk)
                written += chunk.count(b"\n")
        finally:
            if output is not None:
                sink.close()
            else:
                sink.flush()
        return written

    lines = _with_database(export)
    if output is not None:
        events = lines - (1 if format is ExportFormat.CSV else 0)
        Console(stderr=True).print(f"{events} audit events written to {output}")


def top(
    scrape: Annotated[
        list[str] | None,
        typer.Option(help="A /metrics URL to read (repeat). Default: the dev stack's."),
    ] = None,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between refreshes.")] = 2.0,
    once: Annotated[bool, typer.Option(help="Print one snapshot (two reads) and exit.")] = False,
) -> None:
    """The fleet's live load: sessions, checks per minute, backlog, CPU and memory per
    process, open alerts. Ctrl-C to leave."""

    async def main(settings: Settings) -> None:
        targets = scrape or default_targets(settings)
        client = await connect_temporal(settings)
        engine = create_engine(settings.resolved_database_url(), POOL_SIZE)
        try:
            async with httpx.AsyncClient() as http:
                service = LoadService(client, create_sessionmaker(engine), settings, http)
                await _watch(service, targets, interval, once)
        finally:
            await engine.dispose()

    with contextlib.suppress(KeyboardInterrupt):
        run(main)


async def _watch(service: LoadService, targets: list[str], interval: float, once: bool) -> None:
    previous: FleetLoad | None = None
    current = await service.snapshot(targets)
    if once:
        await asyncio.sleep(min(interval, 1.0))
        previous, current = current, await service.snapshot(targets)
        Console().print(view.top_view(current, previous, service.settings.temporal_task_queue))
        return
    with Live(
        view.top_view(current, previous, service.settings.temporal_task_queue),
        refresh_per_second=4,
        screen=False,
    ) as live:
        while True:
            await asyncio.sleep(interval)
            previous, current = current, await service.snapshot(targets)
            live.update(view.top_view(current, previous, service.settings.temporal_task_queue))
