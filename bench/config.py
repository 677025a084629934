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
    feed_interval: float = 30.0
    breach_fraction: float = 0.1
    concurrency: int = 32
    # uvicorn processes of the embedded stack's API (`uvicorn --workers`): one is bound to a
    # single core, and the start burst is API-bound (bench/README.md, "Start rate").
    api_workers: int = 1
    worker_processes: int = 2  # one per core of this 2-core machine: see bench/README.md
    grace_seconds: float = 15.0
    history_sample: int = 0
    query_sample: int = 200
    seed: int = 1
    api_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
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
    def session_seconds(self) -> float:
        return self.session_minutes * 60.0
