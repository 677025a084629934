"""The figures of one run (the Temporal design or the baseline poller) and their summaries."""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Distribution:
    n: int = 0
    p50: float | None = None
    p99: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> "Distribution":
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return cls(
            n=len(values),
            p50=rounded(percentile(values, 50)),
            p99=rounded(percentile(values, 99)),
            max=rounded(max(values)) if values else None,
        )


@dataclass
class RunFigures:
    """Everything one run measured; times in milliseconds unless the name says otherwise."""

    design: str
    sessions_planned: int = 0
    sessions_started: int = 0
    sessions_failed: int = 0
    sessions_held: int = 0
    # Workflow checks plus the API's check of each accepted fill or mark.
    checks: int = 0
    workflow_checks: int = 0
    ingest_checks: int = 0
    sweep_checks: int = 0
    checks_by_kind: dict[str, int] = field(default_factory=dict)
    steady_checks_by_kind: dict[str, int] = field(default_factory=dict)
    history_checks_by_kind: dict[str, int] = field(default_factory=dict)
    # The fleet sweep (issue 13): metrics over the run and the steady window, the sweeps
    # seen in fleet_sweeps, gaps between a shard's sweeps, how late results were.
    sweep_run: dict[str, object] = field(default_factory=dict)
    sweep_steady: dict[str, object] = field(default_factory=dict)
    sweep_table: dict[str, object] = field(default_factory=dict)
    check_gap_ms: Distribution = field(default_factory=Distribution)
    sweep_due_to_swept_ms: Distribution = field(default_factory=Distribution)
    sweep_lateness_p99_bound_ms: float | None = None
    sweep_coverage: Distribution = field(default_factory=Distribution)
    sweep_coverage_min: float | None = None
    market_batches: dict[str, object] = field(default_factory=dict)
    flash_crash: dict[str, object] = field(default_factory=dict)
    # The kill-switch scenario (issue 16): bench.measure.record_kill.
    kill_switch: dict[str, object] = field(default_factory=dict)
    histories_read: int = 0
    # History events, workflow tasks and activities per check, over the histories read.
    history_per_check: dict[str, float] = field(default_factory=dict)
    tick_lateness_ms: Distribution = field(default_factory=Distribution)
    tick_lateness_steady_ms: Distribution = field(default_factory=Distribution)
    tick_scheduling_ms: Distribution = field(default_factory=Distribution)
    signal_to_check_ms: Distribution = field(default_factory=Distribution)
    check_activity_ms: Distribution = field(default_factory=Distribution)
    timer_fire_delay_ms: Distribution = field(default_factory=Distribution)
    expiry_lateness_ms: Distribution = field(default_factory=Distribution)
    expiries_missing: int = 0
    expiry_to_gate_closed_ms: Distribution = field(default_factory=Distribution)
    breach_to_halt_ms: Distribution = field(default_factory=Distribution)
    breach_to_row_ms: Distribution = field(default_factory=Distribution)
    breach_to_gate_closed_ms: Distribution = field(default_factory=Distribution)
    breaches_posted: int = 0
    breaches_missing: int = 0
    start_rate_per_s: float | None = None
    loss_check_query_ms: Distribution = field(default_factory=Distribution)
    loss_check_server_ms: Distribution = field(default_factory=Distribution)
    window_seconds: float = 0.0
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    cpu_per_1000_checks: float | None = None
    steady_window_seconds: float | None = None
    steady_window: tuple[float, float] | None = None
    steady_checks: int | None = None
    steady_cpu_seconds: dict[str, float] = field(default_factory=dict)
    steady_cpu_per_1000_checks: float | None = None
    steady_cpu_cores: dict[str, float] = field(default_factory=dict)
    idle_cpu_per_s: dict[str, float] = field(default_factory=dict)
    cpu_per_1000_checks_above_idle: float | None = None
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    peak_pss_mb: dict[str, float] = field(default_factory=dict)
    driver_cpu_seconds: float = 0.0
    # Cores used by each part, by the driver and by the rest of the machine (other tenants),
    # per timeline interval: [t_end, {part: cores}].
    cpu_timeline: list[dict[str, float]] = field(default_factory=list)
    feed: dict[str, int] = field(default_factory=dict)
    end_statuses: dict[str, int] = field(default_factory=dict)
    log_findings: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def account_steady_cpu(self, cpu: dict[str, float], seconds: float, checks: int) -> None:
        self.steady_window_seconds = round(seconds, 1)
        self.steady_checks = checks
        self.steady_cpu_seconds = {**cpu, "total": round(sum(cpu.values()), 3)}
        if seconds > 0:
            self.steady_cpu_cores = {
                name: round(value / seconds, 4) for name, value in self.steady_cpu_seconds.items()
            }
        if checks:
            self.steady_cpu_per_1000_checks = round(sum(cpu.values()) / checks * 1000, 3)

    @property
    def steady_cores(self) -> float | None:
        return self.steady_cpu_cores.get("total")

    @property
    def idle_cores(self) -> float | None:
        return round(sum(self.idle_cpu_per_s.values()), 4) if self.idle_cpu_per_s else None

    def flash(self, key: str, stat: str = "max") -> float | None:
        value = self.flash_crash.get(key)
        return getattr(value, stat, None) if value is not None else None

    def kill(self, key: str) -> float | None:
        """A kill-switch time (ms after the call); infinite if the switch was pressed but
        the polls never saw it happen (the target is then not met); None if not pressed."""
        if not self.kill_switch.get("pressed"):
            return None
        value = self.kill_switch.get(key)
        return float(value) if isinstance(value, int | float) else math.inf

    def account_cpu(self, cpu: dict[str, float]) -> None:
        if not cpu:
            return
        self.cpu_seconds = {**cpu, "total": round(sum(cpu.values()), 3)}
        if not self.checks:
            return
        total = sum(cpu.values())
        self.cpu_per_1000_checks = round(total / self.checks * 1000, 3)
        if self.idle_cpu_per_s:
            idle = sum(self.idle_cpu_per_s.values()) * self.window_seconds
            self.cpu_per_1000_checks_above_idle = round((total - idle) / self.checks * 1000, 3)


@dataclass(frozen=True)
class Target:
    """A goal of issue 8 and how to read the run's value for it."""

    key: str
    text: str
    limit: float
    at_least: bool
    value: Callable[[RunFigures], float | None]

    def met(self, figures: RunFigures) -> bool | None:
        value = self.value(figures)
        if value is None:
            return None
        return value >= self.limit if self.at_least else value <= self.limit


TARGETS = (
    # Issue 13, a): the whole stack holding quiet sessions (steady state, no feed).
    Target("steady_cores", "<= 0.1 core", 0.1, False, lambda f: f.steady_cores),
    # Issue 13, c)
    Target(
        "sweep_lateness_p99_ms",
        "<= 1000",
        1000,
        False,
        lambda f: f.sweep_lateness_p99_bound_ms,
    ),
    Target("check_gap_max_ms", "<= 31000", 31000, False, lambda f: f.check_gap_ms.max),
    Target(
        "breach_to_gate_closed_p99_ms",
        "<= 500",
        500,
        False,
        lambda f: f.breach_to_gate_closed_ms.p99,
    ),
    Target("expiry_lateness_p99_ms", "<= 1000", 1000, False, lambda f: f.expiry_lateness_ms.p99),
    # Issue 13, d)
    Target(
        "flash_gate_closed_max_ms",
        "<= 1000",
        1000,
        False,
        lambda f: f.flash("gate_closed_after_answer_ms"),
    ),
    Target(
        "flash_ended_max_ms", "<= 30000", 30000, False, lambda f: f.flash("ended_after_answer_ms")
    ),
    # Issue 16, 1.: kill 1000 sessions; times from the call.
    Target("kill_gates_closed_ms", "<= 1000", 1000, False, lambda f: f.kill("gates_closed_ms")),
    Target("kill_all_ended_ms", "<= 30000", 30000, False, lambda f: f.kill("all_ended_ms")),
)
