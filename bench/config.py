"""Everything one benchmark run is told on the command line, in one frozen object."""

from dataclasses import dataclass, field
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class BenchConfig:
    """The workload and where it runs; defaults match ``make bench``."""

    sessions: int = 1000
    minutes: float = 5.0
    session_minutes: float = 4.0
    check_interval: float = 30.0
    # Session start times are spread evenly over this many seconds, so the periodic
    # checks of a desk do not all fall on the same instant (0 = everyone at once).
    stagger_seconds: float = 30.0
    # "market": POST /marks batches for every symbol plus sparse fills (issue 13);
    # "session": per-session marks and fills every ``feed_interval`` (issue 8's feed);
    # "none": only the planned breaches.
    feed: str = "market"
    feed_interval: float = 30.0
    symbols: int = 200
    mark_period: float = 1.0  # seconds between two market batches (all symbols each)
    fill_interval: float = 300.0  # mean seconds between two fills of one session
    position: int = 200  # shares each session opens in its symbol (market feed)
    # Sessions taken through their limits by one market batch (0: no flash crash), and when
    # (a fraction of the run).
    flash_crash: int = 0
    flash_at: float = 0.6
    # Share of sessions whose deadlines are spread over the run (None: all last
    # ``session_minutes``); the others outlive it.
    expiring: float | None = None
    breach_fraction: float = 0.05
    # The kill-switch scenario (issue 16): POST /kill-switch this many seconds after the
    # first planned start (None: not pressed), on scope "all" or "algorithm" (bench-algo,
    # every session of the run), then watch for at most ``kill_wait`` s.
    kill_switch_at: float | None = None
    kill_scope: str = "all"
    kill_wait: float = 120.0
    idle_seconds: float = 10.0
    # Steady state begins this long after the last planned start (opening fills settle).
    steady_margin: float = 5.0
    concurrency: int = 32
    # uvicorn processes of the embedded stack's API (`uvicorn --workers`): one is bound to a
    # single core, and the start burst is API-bound (bench/README.md, "Start rate").
    api_workers: int = 1
    worker_processes: int = 2  # one per core of this 2-core machine: see bench/README.md
    grace_seconds: float = 15.0
    history_sample: int = 200
    query_sample: int = 200
    seed: int = 1
    api_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    market_key: str | None = field(default=None, repr=False)
    risk_key: str | None = field(default=None, repr=False)
    baseline: bool = False
    only_baseline: bool = False
    keep_data: bool = False
    pids: dict[str, int] = field(default_factory=dict)
    # Extra dynamic config of the embedded Temporal dev server, KEY -> JSON value.
    dynamic_config: dict[str, str] = field(default_factory=dict)
    results_dir: Path = RESULTS_DIR

    @property
    def run_seconds(self) -> float:
        return self.minutes * 60.0

    @property
    def market(self) -> bool:
        return self.feed == "market"

    @property
    def session_seconds(self) -> float:
        return self.session_minutes * 60.0
