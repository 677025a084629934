"""Tick lateness and check counts read from the workflows' own histories.

A periodic check is a durable timer followed by a ``check_session`` activity. The timer's
due time is the ``TimerStarted`` event time plus its ``start_to_fire_timeout``; the check
starts at the ``ActivityTaskStarted`` event time, or, run as a local activity (recorded as
a ``core_local_activity`` marker), at the start of the workflow task that ran it. A check
that follows a ``check_now`` signal (a fill or a mark) rather than a fired timer is the
real-time path; the first check after activation follows neither. A wake-up after which
the workflow starts a new timer without checking (a time warning's) is not a tick.
"""

import asyncio
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.service import RPCError

CHECK_ACTIVITY = "check_session"
CHECK_SIGNAL = "check_now"
LOCAL_ACTIVITY_MARKER = "core_local_activity"
# Activities after which a wake-up counts as acted on. Others that may run in between
# (a time warning, say) leave the pending timer or signal to the check that follows.
CONSUMING_ACTIVITIES = frozenset({CHECK_ACTIVITY, "activate_session"})
MAX_RUNS_PER_WORKFLOW = 50


@dataclass
class HistoryFigures:
    """Millisecond samples and counts over the workflows read."""

    workflows: int = 0
    unreadable: int = 0
    checks_in_window: Counter[str] = field(default_factory=Counter)
    checks_by_kind: Counter[str] = field(default_factory=Counter)
    tick_lateness_ms: list[float] = field(default_factory=list)
    # Tick lateness of the ticks due inside each window, by window name.
    tick_lateness_in_ms: dict[str, list[float]] = field(default_factory=dict)
    tick_scheduling_ms: list[float] = field(default_factory=list)
    signal_to_check_ms: list[float] = field(default_factory=list)
    check_activity_ms: list[float] = field(default_factory=list)
    timer_fire_delay_ms: list[float] = field(default_factory=list)
    events: int = 0
    workflow_tasks: int = 0
    activities: Counter[str] = field(default_factory=Counter)


def _seconds(event: HistoryEvent) -> float:
    return float(event.event_time.ToMicroseconds()) / 1e6


@dataclass
class _Check:
    kind: str
    reference: float | None
    scheduled: float
    started: float | None = None


Windows = dict[str, tuple[float, float]]


def _local_activity(event: HistoryEvent) -> tuple[str, float | None] | None:
    """(activity type, completion time) of a local activity's marker, else None."""
    attributes = event.marker_recorded_event_attributes
    if attributes.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in attributes.details:
        return None
    try:
        data = json.loads(attributes.details["data"].payloads[0].data)
    except (IndexError, ValueError):
        return None
    done = data.get("complete_time") or {}
    completed = done["seconds"] + done.get("nanos", 0) / 1e9 if "seconds" in done else None
    return str(data.get("activity_type", "")), completed


class _Reader:
    """Walks one workflow's events, remembering what woke it and the checks it ran."""

    def __init__(self, into: HistoryFigures) -> None:
        self.into = into
        self.timer_due: dict[int, float] = {}
        self.fired_due: float | None = None
        self.first_signal: float | None = None
        self.task_started = 0.0
        self.checks: dict[int, _Check] = {}

    def activity(self, name: str, event_id: int, at: float) -> _Check | None:
        """An activity (or local activity) began at ``at``; classify it if it is a check."""
        self.into.activities[name] += 1
        check = None
        if name == CHECK_ACTIVITY:
            if self.fired_due is not None:
                check = _Check("tick", self.fired_due, at)
            elif self.first_signal is not None:
                check = _Check("signal", self.first_signal, at)
            else:
                check = _Check("initial", None, at)
            self.checks[event_id] = check
        if name in CONSUMING_ACTIVITIES:
            self.fired_due = self.first_signal = None
        return check

    def read(self, event: HistoryEvent) -> None:
        at, kind, into = _seconds(event), event.event_type, self.into
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            self.task_started = at
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            into.workflow_tasks += 1
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            timeout = event.timer_started_event_attributes.start_to_fire_timeout
            self.timer_due[event.event_id] = at + float(timeout.ToMicroseconds()) / 1e6
            # Asleep again: the last wake-up (a time warning's, say) led to no check.
            self.fired_due = self.first_signal = None
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
            started_id = event.timer_fired_event_attributes.started_event_id
            self.fired_due = self.timer_due.get(started_id)
            if self.fired_due is not None:
                into.timer_fire_delay_ms.append((at - self.fired_due) * 1000)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            name = event.workflow_execution_signaled_event_attributes.signal_name
            if name == CHECK_SIGNAL and self.first_signal is None:
                self.first_signal = at
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            self.activity(name, event.event_id, at)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            check = self.checks.get(attributes.scheduled_event_id)
            if check is not None:
                check.started = at
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attributes_done = event.activity_task_completed_event_attributes
            check = self.checks.get(attributes_done.scheduled_event_id)
            if check is not None and check.started is not None:
                into.check_activity_ms.append((at - check.started) * 1000)
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            local = _local_activity(event)
            if local is not None:
                # A local activity runs inside the workflow task that records its marker.
                check = self.activity(local[0], event.event_id, self.task_started)
                if check is not None:
                    check.started = self.task_started
                    completed = local[1] if local[1] is not None else at
                    into.check_activity_ms.append((completed - self.task_started) * 1000)


def analyse(events: Sequence[HistoryEvent], windows: Windows, into: HistoryFigures) -> None:
    """Classify every check of one workflow's history and add its figures to ``into``."""
    reader = _Reader(into)
    into.events += len(events)
    for event in events:
        reader.read(event)
    for check in reader.checks.values():
        for name, (begin, end) in windows.items():
            into.checks_in_window[name] += begin <= check.scheduled <= end
        into.checks_by_kind[check.kind] += 1
        started = check.started if check.started is not None else check.scheduled
        if check.kind == "tick" and check.reference is not None:
            lateness = (started - check.reference) * 1000
            into.tick_lateness_ms.append(lateness)
            for name, (begin, end) in windows.items():
                if begin <= check.reference <= end:
                    into.tick_lateness_in_ms.setdefault(name, []).append(lateness)
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
    windows: Windows,
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
        analyse(events, windows, figures)

    await asyncio.gather(*(one(workflow_id) for workflow_id in chosen))
    scale = len(workflow_ids) / figures.workflows if figures.workflows else 0.0
    return figures, scale
