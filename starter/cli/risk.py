"""``sessionctl kill`` / ``rearm`` / ``kill-status``: the emergency kill switch; ``risk`` and
``account-limit``: an account's daily loss limit across its sessions."""

import asyncio
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from domain.text import Identifier
from starter.api.risk_schemas import AccountLimitsBody, KillSwitchBody, KillSwitchOut, RearmBody
from starter.cli import render
from starter.cli.runner import EXIT_ERROR, EXIT_USAGE, fail, parse, run_with_service
from starter.services.accounts import AccountService
from starter.services.kill_switch import KillSwitchService
from starter.services.sessions import SessionService

WAIT_POLL_SECONDS = 0.5


def _kill_switches(service: SessionService) -> KillSwitchService:
    return KillSwitchService(
        service.client, service.sessionmaker, service.settings, service.metrics
    )


def kill(
    reason: Annotated[str, typer.Option(help="Why, for the audit trail (required).")],
    account: Annotated[str | None, typer.Option(help="Every open session of this account.")] = None,
    algorithm: Annotated[
        str | None, typer.Option(help="Every open session of this algorithm.")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every open session of every account.")
    ] = False,
    actor: Annotated[str | None, typer.Option(help="Who acts. Default: your login name.")] = None,
    wait: Annotated[bool, typer.Option(help="Show progress until every session ended.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits at most.")] = 60.0,
) -> None:
    """Emergency kill switch: close every gate in the scope now, end every session in it, and
    refuse new ones there until an admin re-arms it (``sessionctl rearm ID``)."""
    from starter.cli.app import _actor  # the CLI's one rule for a default actor

    if sum((account is not None, algorithm is not None, all_)) != 1:
        fail("name exactly one of --account, --algorithm or --all", EXIT_USAGE)
    scope = {"account_id": account, "algorithm_id": algorithm, "all": True if all_ else None}
    request = parse(
        KillSwitchBody,
        {"scope": {k: v for k, v in scope.items() if v}, "reason": reason, "actor": _actor(actor)},
    )
    out = Console()

    async def work(service: SessionService) -> KillSwitchOut:
        switches = _kill_switches(service)
        switch, _ = await switches.engage(request)
        out.print(
            f"Kill switch {switch.id} engaged on {switch.scope.describe()}: "
            f"{switch.sessions_targeted} gates closed."
        )
        if not wait or switch.sessions_targeted == 0:
            return switch
        return await _follow(switches, switch, timeout)

    switch = run_with_service(work)
    out.print(render.kill_switch_details(switch))
    if not switch.fanout_started:
        fail("Temporal did not take the fan-out: run the same command again", EXIT_ERROR)
    if wait and switch.sessions_winding_down:
        fail(f"{switch.sessions_winding_down} sessions still winding down", EXIT_ERROR)


async def _follow(
    switches: KillSwitchService, switch: KillSwitchOut, timeout: float
) -> KillSwitchOut:
    deadline = asyncio.get_running_loop().time() + timeout
    columns = (TextColumn("sessions ended"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("ended", total=switch.sessions_targeted)
        while switch.sessions_winding_down and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(WAIT_POLL_SECONDS)
            switch = await switches.get(switch.id)
            progress.update(task, completed=switch.sessions_ended)
    return switch


def rearm(
    kill_switch_id: Annotated[int, typer.Argument(metavar="ID", help="The kill switch's id.")],
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail.")] = None,
    actor: Annotated[str | None, typer.Option(help="Who acts. Default: your login name.")] = None,
) -> None:
    """Re-arm a kill switch: its scope takes new sessions again."""
    from starter.cli.app import _actor

    request = parse(RearmBody, {"reason": reason, "actor": _actor(actor)})
    switch = run_with_service(lambda s: _kill_switches(s).rearm(kill_switch_id, request))
    Console().print(render.kill_switch_details(switch))


def kill_status(
    kill_switch_id: Annotated[
        int | None, typer.Argument(metavar="[ID]", help="One switch.")
    ] = None,
) -> None:
    """A kill switch's progress, or every switch still engaged."""

    async def work(service: SessionService) -> list[KillSwitchOut]:
        switches = _kill_switches(service)
        if kill_switch_id is not None:
            return [await switches.get(kill_switch_id)]
        return await switches.list_switches(engaged_only=True)

    found = run_with_service(work)
    out = Console()
    if not found:
        out.print("No kill switch is engaged.")
    for switch in found:
        out.print(render.kill_switch_details(switch))


def account_risk(
    account: Annotated[str, typer.Argument(metavar="ACCOUNT", help="The account's id.")],
) -> None:
    """The account's loss of the UTC day over its sessions, against its daily loss limit."""
    parse(AccountIdArg, {"account_id": account})
    found = run_with_service(lambda s: AccountService(s.sessionmaker).risk(account))
    Console().print(render.account_risk_details(found))


def account_limit(
    account: Annotated[str, typer.Argument(metavar="ACCOUNT", help="The account's id.")],
    daily_loss_limit: Annotated[
        str | None, typer.Option(help="The most the account may lose in a UTC day.")
    ] = None,
    clear: Annotated[bool, typer.Option(help="Turn the daily loss limit off.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail.")] = None,
    actor: Annotated[str | None, typer.Option(help="Who acts. Default: your login name.")] = None,
) -> None:
    """Set the account's daily loss limit across its sessions (or ``--clear`` it)."""
    from starter.cli.app import _actor

    if (daily_loss_limit is None) == (not clear):
        fail("give exactly one of --daily-loss-limit or --clear", EXIT_USAGE)
    parse(AccountIdArg, {"account_id": account})
    request = (
        parse(
            AccountLimitsBody,
            {"daily_loss_limit": daily_loss_limit, "reason": reason, "actor": _actor(actor)},
        )
        if not clear
        else AccountLimitsBody(daily_loss_limit=None, reason=reason, actor=_actor(actor))
    )
    found = run_with_service(lambda s: AccountService(s.sessionmaker).set_limits(account, request))
    Console().print(render.account_risk_details(found))


class AccountIdArg(BaseModel):
    account_id: Identifier
