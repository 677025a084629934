"""``make bench``: load the whole stack with N sessions and report latency and cost.

    python -m bench.run --sessions 1000 --minutes 5 [--baseline]

See bench/README.md for what each figure means and how it is measured.
"""

import logging
import secrets
import signal
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from bench.baseline_run import run_baseline
from bench.config import RESULTS_DIR, BenchConfig
from bench.figures import RunFigures
from bench.phases import run_temporal
from bench.report import print_report, write_json

app = typer.Typer(add_completion=False)


class KillScope(StrEnum):
    ALL = "all"
    ALGORITHM = "algorithm"


class Feed(StrEnum):
    MARKET = "market"
    SESSION = "session"
    NONE = "none"


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, _, setting = value.partition("=")
        if not name or not setting:
            raise typer.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        pairs[name] = setting
    return pairs


def _pids(values: list[str]) -> dict[str, int]:
    pids = _pairs(values, "--pid")
    for name, pid in pids.items():
        if not pid.isdigit():
            raise typer.BadParameter(f"{name}: {pid!r} is not a process id", param_hint="--pid")
    return {name: int(pid) for name, pid in pids.items()}


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command()
def main(
    sessions: Annotated[int, typer.Option(min=1, help="Sessions to start.")] = 1000,
    minutes: Annotated[float, typer.Option(min=0.1, help="Length of the run.")] = 5.0,
    session_minutes: Annotated[
        float | None, typer.Option(min=0.05, help="Session length (default: 0.8 x minutes).")
    ] = None,
    check_interval: Annotated[
        float, typer.Option(min=0.1, help="TRADING_CHECK_INTERVAL_SECONDS of the stack.")
    ] = 30.0,
    stagger: Annotated[
        float | None,
        typer.Option(min=0, help="Spread session start times over S s (default: the interval)."),
    ] = None,
    feed: Annotated[
        Feed,
        typer.Option(
            help="market: POST /marks batches for every symbol + sparse fills; session: "
            "per-session marks and fills (issue 8); none: an opening fill, then breaches only."
        ),
    ] = Feed.MARKET,
    no_feed: Annotated[bool, typer.Option(help="Same as --feed none.")] = False,
    feed_interval: Annotated[
        float,
        typer.Option(min=0, help="--feed session: mean s between a session's marks/fills."),
    ] = 30.0,
    symbols: Annotated[int, typer.Option(min=1, help="Symbols of the market feed.")] = 200,
    mark_period: Annotated[
        float, typer.Option(min=0.05, help="Seconds between two market batches.")
    ] = 1.0,
    fill_interval: Annotated[
        float, typer.Option(min=1, help="Mean seconds between two fills of a session.")
    ] = 300.0,
    position: Annotated[
        int, typer.Option(min=1, help="Shares each session opens in its symbol.")
    ] = 200,
    flash_crash: Annotated[
        int, typer.Option(min=0, help="Sessions one mark batch takes through their limits.")
    ] = 0,
    flash_at: Annotated[
        float, typer.Option(min=0, max=1, help="When the flash crash comes (share of the run).")
    ] = 0.6,
    expiring: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=1,
            help="Share of sessions with deadlines spread over the run; the rest "
            "outlive it (default: every session lasts --session-minutes).",
        ),
    ] = None,
    breach_fraction: Annotated[
        float, typer.Option(min=0, max=1, help="Share of sessions driven into a breach.")
    ] = 0.05,
    kill_switch_at: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Press POST /kill-switch S s after the first planned start and time every "
            "gate closed and every session ended (issue 16).",
        ),
    ] = None,
    kill_scope: Annotated[
        KillScope,
        typer.Option(help="all: {all: true}; algorithm: bench-algo, every session of the run."),
    ] = KillScope.ALL,
    kill_wait: Annotated[
        float, typer.Option(min=1, help="Seconds to watch the kill switch's sessions end.")
    ] = 120.0,
    idle_seconds: Annotated[
        float, typer.Option(min=0, help="Seconds the idle stack is measured before the starts.")
    ] = 10.0,
    steady_margin: Annotated[
        float, typer.Option(min=0, help="Steady state begins S s after the last planned start.")
    ] = 5.0,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at most.")] = 32,
    api_workers: Annotated[
        int, typer.Option(min=1, help="uvicorn --workers of the embedded stack's API.")
    ] = 1,
    worker_processes: Annotated[
        int, typer.Option(min=1, help="`python worker.py` processes of the embedded stack.")
    ] = 2,
    grace: Annotated[float, typer.Option(min=0, help="Seconds to wait for late ends.")] = 15.0,
    history_sample: Annotated[
        int, typer.Option(min=0, help="Workflow histories to read (0 = all).")
    ] = 200,
    query_sample: Annotated[
        int, typer.Option(min=1, help="Sessions whose loss-check query is timed.")
    ] = 200,
    seed: int = 1,
    api_url: Annotated[
        str | None,
        typer.Option(help="Use this API (and TRADING_TEMPORAL_ADDRESS / DATABASE_URL)."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="TRADING_API_KEY", help="Key for --api-url (operator role)."),
    ] = None,
    market_key: Annotated[
        str | None,
        typer.Option(envvar="TRADING_MARKET_KEY", help="Key for --api-url's POST /marks."),
    ] = None,
    risk_key: Annotated[
        str | None,
        typer.Option(envvar="TRADING_RISK_KEY", help="Key for --api-url's POST /kill-switch."),
    ] = None,
    pid: Annotated[
        list[str] | None, typer.Option(help="NAME=PID of a configured stack's process.")
    ] = None,
    dynamic_config: Annotated[
        list[str] | None,
        typer.Option(help="KEY=JSON dynamic config of the embedded Temporal dev server."),
    ] = None,
    baseline: Annotated[bool, typer.Option(help="Also run the baseline poller.")] = False,
    only_baseline: Annotated[bool, typer.Option(help="Run the baseline only.")] = False,
    keep_data: Annotated[bool, typer.Option(help="Keep the temporary data and logs.")] = False,
    results_dir: Path = RESULTS_DIR,
) -> None:
    """Start N sessions through the API, feed them, and measure the stack."""
    config = BenchConfig(
        sessions=sessions,
        minutes=minutes,
        session_minutes=session_minutes if session_minutes is not None else 0.8 * minutes,
        check_interval=check_interval,
        stagger_seconds=stagger if stagger is not None else check_interval,
        feed=Feed.NONE.value if no_feed else feed.value,
        feed_interval=feed_interval,
        symbols=symbols,
        mark_period=mark_period,
        fill_interval=fill_interval,
        position=position,
        flash_crash=flash_crash,
        flash_at=flash_at,
        expiring=expiring,
        breach_fraction=breach_fraction,
        kill_switch_at=kill_switch_at,
        kill_scope=kill_scope.value,
        kill_wait=kill_wait,
        idle_seconds=idle_seconds,
        steady_margin=steady_margin,
        concurrency=concurrency,
        api_workers=api_workers,
        worker_processes=worker_processes,
        grace_seconds=grace,
        history_sample=history_sample,
        query_sample=query_sample,
        seed=seed,
        api_url=api_url.rstrip("/") if api_url else None,
        api_key=api_key,
        market_key=market_key,
        risk_key=risk_key,
        baseline=baseline or only_baseline,
        only_baseline=only_baseline,
        keep_data=keep_data,
        pids=_pids(pid or []),
        dynamic_config=_pairs(dynamic_config or [], "--dynamic-config"),
        results_dir=results_dir,
    )
    console = Console()
    if not console.is_terminal:
        console.width = 132  # `make bench | tee`: keep the table readable
    logging.basicConfig(
        level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console)]
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # clean up on `kill` as on Ctrl-C
    run_id = secrets.token_hex(3)
    main_figures: RunFigures | None = None
    baseline_figures: RunFigures | None = None
    if not config.only_baseline:
        main_figures = run_temporal(config, console, run_id)
    if config.baseline:
        baseline_figures = run_baseline(config, console, run_id)
    print_report(console, main_figures, baseline_figures, config)
    path = write_json(config, run_id, main_figures, baseline_figures)
    console.print(f"results written to {path}")


if __name__ == "__main__":
    app()
