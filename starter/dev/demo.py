"""Watch sessions live: ``python -m starter.dev.demo --sessions 5 --minutes 3``.

Starts sessions through the HTTP API of a running stack (``make run``) and drives each with a
random-walk algorithm (:mod:`starter.dev.demo_driver`). Half of them are unlucky with tight loss
limits: they pass through REDUCING at 60 % of the limit (only unwinding orders), so the state,
loss warnings and breaches show in the Temporal Web UI within minutes; the rest expire at their
deadline after a time warning. Every third session trades on an account of its own that the
demo kill-switches part-way through (``--kill-after``); it re-arms the switch at the end, so
the next run can use the account again.
"""

import asyncio
import random
from dataclasses import dataclass, field
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
KILL_ACCOUNT = "demo-kill"
KILL_REASON = "demo: kill switch drill"
KILL_WAIT_SECONDS = 60.0  # how long after the drivers the demo waits for the switch's sessions
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
    kill_after: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Seconds into the run when the kill switch ends the kill account's sessions; "
            "default half the run, 0 for none.",
        ),
    ] = None,
    kill_account: Annotated[
        str, typer.Option(help="The account of its own that the kill switch ends.")
    ] = KILL_ACCOUNT,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="TRADING_API_KEY", help="An admin key for the API (make run's)."),
    ] = None,
) -> None:
    """Start SESSIONS sessions of MINUTES minutes and trade them live until they end."""
    after = minutes * 30 if kill_after is None else kill_after
    try:
        asyncio.run(
            run_demo(
                sessions,
                minutes,
                api,
                tick,
                seed,
                ui,
                api_key,
                kill_after=after or None,
                kill_account=kill_account,
            )
        )
    except KeyboardInterrupt:
        console.print("[yellow]Stopped; the sessions run on until their deadline.[/]")


@dataclass
class KillDrill:
    """The demo's kill switch: when to press it on which account, and how far it got."""

    account_id: str
    after: float
    reason: str = KILL_REASON
    switch: dict[str, Any] | None = None  # the latest GET /kill-switch/{id}
    rearmed: bool = False
    error: str | None = None
    targets: list[str] = field(default_factory=list)  # the demo's sessions on the account

    @property
    def switch_id(self) -> int | None:
        return None if self.switch is None else int(self.switch["id"])

    def describe(self) -> Text:
        """One line under the live table: armed, pressed (its progress), or re-armed."""
        if self.error:
            return Text(f"kill switch on account {self.account_id}: {self.error}", style="red")
        if self.switch is None:
            return Text(
                f"kill switch: account {self.account_id} ({len(self.targets)} sessions) "
                f"at {self.after:g} s",
                style="cyan",
            )
        s = self.switch
        state = "re-armed" if self.rearmed else "engaged"
        return Text(
            f"kill switch #{s['id']} {state} on account {self.account_id}: "
            f"{s['sessions_ended']}/{s['sessions_targeted']} sessions ended, "
            f"{s['sessions_winding_down']} winding down, {s['signals_sent']} signalled",
            style="magenta" if not self.rearmed else "green",
        )


@dataclass
class DemoRun:
    """What a demo run did: every driver's figures and the kill switch, if any."""

    stats: list[DriverStats]
    drill: KillDrill | None


async def run_demo(
    count: int,
    minutes: float,
    base_url: str,
    tick: float = 1.0,
    seed: int | None = None,
    ui: str = DEFAULT_UI,
    api_key: str | None = None,
    *,
    kill_after: float | None = None,
    kill_account: str = KILL_ACCOUNT,
) -> DemoRun:
    """Connect to the API, then run the demo (:func:`demo`)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=15, headers=headers) as api:
        try:
            (await api.get("/health/live")).raise_for_status()
        except httpx.HTTPError as err:
            console.print(f"[red]No API at {base_url} ({err}). Start the stack with `make run`.[/]")
            raise typer.Exit(1) from err
        return await demo(
            api,
            count,
            minutes,
            tick=tick,
            seed=seed,
            ui=ui,
            kill_after=kill_after,
            kill_account=kill_account,
        )


async def demo(
    api: httpx.AsyncClient,
    count: int,
    minutes: float,
    *,
    tick: float = 1.0,
    seed: int | None = None,
    ui: str = DEFAULT_UI,
    kill_after: float | None = None,
    kill_account: str = KILL_ACCOUNT,
) -> DemoRun:
    """Start the sessions, drive them all at once (pressing the kill switch ``kill_after``
    seconds in, None: never), re-arm it, then print their final figures."""
    rng = random.Random(seed)
    schedule = plans(
        count,
        minutes,
        tick_seconds=tick,
        kill_account=kill_account if kill_after is not None else None,
    )
    drill = None
    targets = [plan.session_id for plan in schedule if plan.account_id == kill_account]
    if kill_after is not None and not targets:
        console.print("[yellow]No kill switch: it needs three sessions or more.[/]")
    elif kill_after is not None:
        drill = KillDrill(account_id=kill_account, after=kill_after, targets=targets)
        await _unlock(api, kill_account)
    for plan in schedule:
        await start_session(api, plan)
    console.print(
        f"Started {count} sessions of {minutes:g} min; watch them in the Temporal Web UI "
        f"at [link]{ui}[/link]."
    )
    all_stats = [DriverStats(plan=plan, price=plan.start_price) for plan in schedule]
    press = asyncio.create_task(_press_later(api, drill)) if drill else None
    try:
        with Live(
            render(all_stats, drill), console=console, refresh_per_second=REFRESH_PER_SECOND
        ) as live:
            drivers = [
                asyncio.create_task(_guarded(api, stats, random.Random(rng.random()), tick))
                for stats in all_stats
            ]
            while not all(task.done() for task in drivers):
                live.update(render(all_stats, drill))
                await asyncio.sleep(1 / REFRESH_PER_SECOND)
            if press is not None:
                await _finish(press, drill)
            live.update(render(all_stats, drill))
    finally:
        if press is not None and not press.done():
            press.cancel()
        if drill is not None:
            await _rearm(api, drill)
    console.print(summary([await _performance(api, s) for s in all_stats], all_stats))
    if drill is not None:
        console.print(drill.describe())
        killed = [s.plan.session_id for s in all_stats if s.killed]
        if killed:
            console.print(f"Ended by the kill switch ({drill.reason}): {', '.join(killed)}")
    return DemoRun(stats=all_stats, drill=drill)


async def _unlock(api: httpx.AsyncClient, account_id: str) -> None:
    """Re-arm a switch an interrupted run left engaged on the account, or no session starts."""
    response = await api.get("/kill-switch", params={"engaged": "true"})
    response.raise_for_status()
    for switch in response.json():
        if switch["scope"] == {"kind": "account", "value": account_id}:
            await api.post(
                f"/kill-switch/{switch['id']}/rearm",
                json={"reason": "demo: left engaged by an earlier run"},
            )
            console.print(f"[yellow]Re-armed kill switch #{switch['id']} left on {account_id}.[/]")


async def _press_later(api: httpx.AsyncClient, drill: KillDrill) -> None:
    """Press the kill switch on the drill's account, then follow it until none winds down."""
    await asyncio.sleep(drill.after)
    try:
        pressed = await api.post(
            "/kill-switch",
            json={"scope": {"account_id": drill.account_id}, "reason": drill.reason},
        )
        pressed.raise_for_status()
        drill.switch = pressed.json()
        while drill.switch["sessions_winding_down"] > 0 or not drill.switch["fanout_started"]:
            await asyncio.sleep(1 / REFRESH_PER_SECOND)
            response = await api.get(f"/kill-switch/{drill.switch_id}")
            response.raise_for_status()
            drill.switch = response.json()
    except httpx.HTTPError as err:
        drill.error = str(err) or type(err).__name__


async def _finish(press: "asyncio.Task[None]", drill: KillDrill | None) -> None:
    """The drivers are done: a switch not pressed yet is not needed (its sessions ended
    first); a pressed one gets a little while to report every session ended."""
    if drill is None or drill.switch is None:
        press.cancel()
        return
    try:
        await asyncio.wait_for(press, timeout=KILL_WAIT_SECONDS)
    except TimeoutError:
        drill.error = f"sessions still winding down after {KILL_WAIT_SECONDS:g} s"


async def _rearm(api: httpx.AsyncClient, drill: KillDrill) -> None:
    """Unlock the account again, so the next demo run can start sessions on it."""
    if drill.switch_id is None or drill.rearmed:
        return
    response = await api.post(
        f"/kill-switch/{drill.switch_id}/rearm", json={"reason": "end of the demo"}
    )
    if response.status_code == 200:
        drill.switch, drill.rearmed = response.json(), True
    else:
        drill.error = f"re-arm refused: {response.status_code} {response.text}"


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
STATE_STYLE = {"ACTIVE": "green", "REDUCING": "bold yellow", "HALTED": "red"}


def render(all_stats: list[DriverStats], drill: KillDrill | None = None) -> Table:
    """The live table: one row per session, as its driver last saw it; the kill switch under."""
    table = Table(title="Trading sessions (live)", expand=True)
    for column in ("session", "account", "limit", "status", "gate", "state", "price", "pos"):
        left = column in ("session", "account", "status", "state")
        table.add_column(column, justify="left" if left else "right")
    for column in ("orders", "fills", "no-trade ticks", "realized"):
        table.add_column(column, justify="right")
    table.add_column("loss used")
    table.add_column("time used")
    table.add_column("warnings")
    for s in all_stats:
        table.add_row(
            s.plan.session_id,
            s.plan.account_id,
            _money(s.plan.loss_limit),
            Text(s.status, style=STATUS_STYLE.get(s.status, "")),
            Text("open", style="green") if s.gate_open else Text("closed", style="red"),
            _state(s),
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
    if drill is not None:
        table.caption = drill.describe()
    return table


def _state(stats: DriverStats) -> Text:
    """The gate's trading state; a session that was REDUCING keeps a mark of it."""
    text = Text(stats.trading_state, style=STATE_STYLE.get(stats.trading_state, ""))
    if stats.reducing_ticks and stats.trading_state != "REDUCING":
        text.append(" (was REDUCING)", style="yellow")
    if stats.reducing_refusals:
        text.append(f" {stats.reducing_refusals} reducing_only", style="red")
    return text


def summary(figures: list[dict[str, Any]], all_stats: list[DriverStats]) -> Table:
    """The end of the run: how each session ended, by what, and what it achieved."""
    table = Table(title="How the sessions ended")
    headers = (
        "session",
        "ended",
        "by",
        "trading states",
        "fills",
        "round trips",
        "win rate",
        "realized",
        "max drawdown",
    )
    for header in headers:
        left = header in ("session", "ended", "by", "trading states")
        table.add_column(header, justify="left" if left else "right")
    for stats, f in zip(all_stats, figures, strict=True):
        win_rate = f.get("win_rate")
        table.add_row(
            stats.plan.session_id,
            Text(stats.status, style=STATUS_STYLE.get(stats.status, "")),
            _ended_by(stats),
            " → ".join(stats.states)
            + (f" ({stats.reducing_refusals} reducing_only)" if stats.reducing_refusals else ""),
            str(f.get("fills", stats.fills)),
            str(f.get("round_trips", "-")),
            "-" if win_rate is None else f"{win_rate:.0%}",
            _money(Decimal(f.get("realized_pnl", stats.realized_pnl))),
            _money(Decimal(f.get("max_drawdown", 0))),
        )
    return table


def _ended_by(stats: DriverStats) -> Text:
    if stats.killed:
        return Text(stats.end_detail or "kill switch", style="bold magenta")
    return Text(stats.end_reason or stats.error or "-")


def bar(fraction: float, width: int = 10) -> Text:
    """A small gauge: green, yellow from 80 % (the warning), red at the limit."""
    filled = max(0, min(width, round(fraction * width)))
    style = "red" if fraction >= 1 else "yellow" if fraction >= 0.8 else "green"
    return Text("█" * filled + "░" * (width - filled) + f" {fraction:4.0%}", style=style)


def _money(amount: Decimal) -> str:
    return f"{amount:,.2f}"


if __name__ == "__main__":
    app()
