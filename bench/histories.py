"""Tick lateness and check counts read from the workflows' own histories.

A periodic check is a durable timer followed by a ``check_session`` activity. The timer's
due time is the ``TimerStarted`` event time plus its ``start_to_fire_timeout``; the check
starts at the ``ActivityTaskStarted`` event time. A check that follows a signal (a fill or
a mark) rather than a fired timer is the real-time path; the first check after activation
follows neither.
"""

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.service import RPCError

CHECK_ACTIVITY = "check_session"
MAX_RUNS_PER_WORKFLOW = 50


@dataclass
class HistoryFigures:
    """Millisecond samples and counts over the workflows read."""

    workflows: int = 0
    unreadable: int = 0
    checks_in_window: int = 0
    checks_by_kind: Counter[str] = field(default_factory=Counter)
    tick_lateness_ms: list[float] = field(default_factory=list)
    tick_scheduling_ms: list[float] = field(default_factory=list)
    signal_to_check_ms: list[float] = field(default_factory=list)
    check_activity_ms: list[float] = field(default_factory=list)


def _seconds(event: HistoryEvent) -> float:
    return float(event.event_time.ToMicroseconds()) / 1e6


@dataclass
class _Check:
    kind: str
    reference: float | None
    scheduled: float
    started: float | None = None


def analyse(
    events: Sequence[HistoryEvent], window: tuple[float, float], into: HistoryFigures
) -> None:
    """Classify every check of one workflow's history and add its figures to ``into``."""
    timer_due: dict[int, float] = {}
    fired_due: float | None = None
    first_signal: float | None = None
    checks: dict[int, _Check] = {}
    for event in events:
        at = _seconds(event)
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_TIMER_STARTED:
            timeout = event.timer_started_event_attributes.start_to_fire_timeout
            timer_due[event.event_id] = at + float(timeout.ToMicroseconds()) / 1e6
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
            fired_due = timer_due.get(event.timer_fired_event_attributes.started_event_id)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            first_signal = at if first_signal is None else first_signal
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            if name == CHECK_ACTIVITY:
                if fired_due is not None:
                    checks[event.event_id] = _Check("tick", fired_due, at)
                elif first_signal is not None:
                    checks[event.event_id] = _Check("signal", first_signal, at)
                else:
                    checks[event.event_id] = _Check("initial", None, at)
            # Whatever the activity, the wake-up that led to it has been acted on.
            fired_due = first_signal = None
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            check = checks.get(event.activity_task_started_event_attributes.scheduled_event_id)
            if check is not None:
                check.started = at
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            check = checks.get(event.activity_task_completed_event_attributes.scheduled_event_id)
            if check is not None and check.started is not None:
                into.check_activity_ms.append((at - check.started) * 1000)
    for check in checks.values():
        if window[0] <= check.scheduled <= window[1]:
            into.checks_in_window += 1
        into.checks_by_kind[check.kind] += 1
        started = check.started if check.started is not None else check.scheduled
        if check.kind == "tick" and check.reference is not None:
            into.tick_lateness_ms.append((started - check.reference) * 1000)
            into.tick_scheduling_ms.append((check.scheduled - check.reference) * 1000)
        elif check.kind == "signal" and check.reference is not None:
            into.signal_to_check_ms.append((started - check.reference) * 1000)


async def _history(client: Client, workflow_id: str) -> list[HistoryEvent]:
    """All runs of a workflow, oldest first, following continue-as-new back to the first."""
    runs: list[list[HistoryEvent]] = []
    run_id: str | None = None
    for _ in range(MAX_RUNS_PER_WORKFLOW):
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        events = list(history.events)
        runs.append(events)
        started = events[0].workflow_execution_started_event_attributes if events else None
        run_id = started.continued_execution_run_id if started is not None else None
        if not run_id:
            break
    return [event for run in reversed(runs) for event in run]


async def read_histories(
    client: Client,
    workflow_ids: Sequence[str],
    window: tuple[float, float],
    sample: int,
    concurrency: int = 16,
) -> tuple[HistoryFigures, float]:
    """Figures over ``sample`` workflows (0 = all); returns them and the scale to all."""
    chosen = list(workflow_ids)
    if 0 < sample < len(chosen):
        chosen = random.Random(0).sample(chosen, sample)
    figures = HistoryFigures()
    slots = asyncio.Semaphore(concurrency)

    async def one(workflow_id: str) -> None:
        async with slots:
            try:
                events = await _history(client, workflow_id)
            except RPCError:
                figures.unreadable += 1
                return
        figures.workflows += 1
        analyse(events, window, figures)

    await asyncio.gather(*(one(workflow_id) for workflow_id in chosen))
    scale = len(workflow_ids) / figures.workflows if figures.workflows else 0.0
    return figures, scale
