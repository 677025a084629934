"""Watch sessions live: ``python -m starter.dev.demo --sessions 5 --minutes 3``.

Starts sessions through the HTTP API of a running stack (``make run``) and drives each with a
random-walk algorithm (:mod:`starter.dev.demo_driver`). Half of them are unlucky with tight loss
limits, so loss warnings and breaches show in the Temporal Web UI within minutes; the rest
expire at their deadline after a time warning.
"""

import asyncio
import random
from decimal import Decimal
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from starter.dev.demo_driver import DriverStats, drive_session, plans, start_session

REFRESH_PER_SECOND = 4
DEFAULT_UI = "http://127.0.0.1:8233"
console = Console()
app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(
    sessions: Annotated[int, typer.Option(min=1, max=50, help="How many sessions.")] = 5,
    minutes: Annotated[float, typer.Option(min=0.5, max=120, help="Length of each.")] = 3.0,
    api: Annotated[str, typer.Option(help="Base URL of the API.")] = "http://127.0.0.1:8000",
    tick: Annotated[float, typer.Option(min=0.1, help="Seconds between trading steps.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Random seed, to replay a run.")] = None,
    ui: Annotated[str, typer.Option(help="Temporal Web UI, for the link.")] = DEFAULT_UI,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="TRADING_API_KEY", help="An operator or admin key for the API."),
    ] = None,
) -> None:
    """Start SESSIONS sessions of MINUTES minutes and trade them live until they end."""
    try:
        asyncio.run(run_demo(sessions, minutes, api, tick, seed, ui, api_key))
    except KeyboardInterrupt:
        console.print("[yellow]Stopped; the sessions run on until their deadline.[/]")


async def run_demo(
    count: int,
    minutes: float,
    base_url: str,
    tick: float = 1.0,
    seed: int | None = None,
    ui: str = DEFAULT_UI,
    api_key: str | None = None,
) -> None:
    """Start the sessions, drive them all at once, then print their final figures."""
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=15, headers=headers) as api:
        try:
            (await api.get("/health/live")).raise_for_status()
        except httpx.HTTPError as err:
            console.print(f"[red]No API at {base_url} ({err}). Start the stack with `make run`.[/]")
            raise typer.Exit(1) from err
        schedule = plans(count, minutes)
        for plan in schedule:
            await start_session(api, plan)
        console.print(
            f"Started {count} sessions of {minutes:g} min; watch them in the Temporal Web UI "
            f"at [link]{ui}[/link]."
        )
        all_stats = [DriverStats(plan=plan, price=plan.start_price) for plan in schedule]
        with Live(
            render(all_stats), console=console, refresh_per_second=REFRESH_PER_SECOND
        ) as live:
            drivers = [
                asyncio.create_task(_guarded(api, stats, random.Random(rng.random()), tick))
                for stats in all_stats
            ]
            while not all(task.done() for task in drivers):
                live.update(render(all_stats))
                await asyncio.sleep(1 / REFRESH_PER_SECOND)
            live.update(render(all_stats))
        console.print(summary([await _performance(api, s) for s in all_stats], all_stats))


async def _guarded(
    api: httpx.AsyncClient, stats: DriverStats, rng: random.Random, tick: float
) -> None:
    # One failing driver (API restarted, network) must not stop the others' display.
    try:
        await drive_session(api, stats.plan, rng=rng, tick_seconds=tick, stats=stats)
    except httpx.HTTPError as err:
        stats.error = str(err) or type(err).__name__


async def _performance(api: httpx.AsyncClient, stats: DriverStats) -> dict[str, Any]:
    response = await api.get(f"/sessions/{stats.plan.session_id}/performance")
    if response.status_code != 200:
        return {}
    body: dict[str, Any] = response.json()
    latest = body.get("latest")
    # The final snapshot is what the session ended with; live figures until it exists.
    figures: dict[str, Any] = latest["figures"] if latest else body["live"]
    return figures


STATUS_STYLE = {
    "ACTIVE": "green",
    "PENDING": "cyan",
    "ENDING": "yellow",
    "EXPIRED": "blue",
    "LOSS_LIMIT": "bold red",
    "TERMINATED": "magenta",
}


def render(all_stats: list[DriverStats]) -> Table:
    """The live table: one row per session, as its driver last saw it."""
    table = Table(title="Trading sessions (live)", expand=True)
    for column in ("session", "limit", "status", "gate", "price", "pos", "orders", "fills"):
        table.add_column(column, justify="right" if column not in ("session", "status") else "left")
    table.add_column("no-trade ticks", justify="right")
    table.add_column("realized", justify="right")
    table.add_column("loss used")
    table.add_column("time used")
    table.add_column("warnings")
    for s in all_stats:
        table.add_row(
            s.plan.session_id,
            _money(s.plan.loss_limit),
            Text(s.status, style=STATUS_STYLE.get(s.status, "")),
            Text("open", style="green") if s.gate_open else Text("closed", style="red"),
            str(s.price),
            str(s.position),
            str(s.orders),
            str(s.fills),
            f"{s.gate_closed_ticks}" + (f" ({s.refused} refused)" if s.refused else ""),
            _money(s.realized_pnl),
            bar(s.loss_used),
            bar(s.time_used),
            Text(", ".join(s.warnings) or s.error or "", style="red" if s.error else "yellow"),
        )
    return table


def summary(figures: list[dict[str, Any]], all_stats: list[DriverStats]) -> Table:
    """The end of the run: how each session ended and what it achieved."""
    table = Table(title="How the sessions ended")
    headers = ("session", "ended", "fills", "round trips", "win rate", "realized", "max drawdown")
    for header in headers:
        table.add_column(header, justify="left" if header in ("session", "ended") else "right")
    for stats, f in zip(all_stats, figures, strict=True):
        win_rate = f.get("win_rate")
        table.add_row(
            stats.plan.session_id,
            Text(stats.status, style=STATUS_STYLE.get(stats.status, "")),
            str(f.get("fills", stats.fills)),
            str(f.get("round_trips", "-")),
            "-" if win_rate is None else f"{win_rate:.0%}",
            _money(Decimal(f.get("realized_pnl", stats.realized_pnl))),
            _money(Decimal(f.get("max_drawdown", 0))),
        )
    return table


def bar(fraction: float, width: int = 10) -> Text:
    """A small gauge: green, yellow from 80 % (the warning), red at the limit."""
    filled = max(0, min(width, round(fraction * width)))
    style = "red" if fraction >= 1 else "yellow" if fraction >= 0.8 else "green"
    return Text("█" * filled + "░" * (width - filled) + f" {fraction:4.0%}", style=style)


def _money(amount: Decimal) -> str:
    return f"{amount:,.2f}"


if __name__ == "__main__":
    app()
