"""``sessionctl``: the operator's command line. It calls the same service functions as the API.

Exit codes: 0 done, 1 refused or failed (e.g. the session already ended), 2 usage, 3 not found,
4 invalid input, 5 Temporal or PostgreSQL unreachable.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from temporalio.client import Client

from domain.session_messages import SessionView
from domain.status import SessionStatus, is_terminal
from starter.api.schemas import (
    ExtendDeadlineBody,
    GateChangeBody,
    RetryCleanupBody,
    SessionOut,
    SetLossLimitBody,
    StartSessionBody,
    TerminateBody,
)
from starter.cli import keys as cli_keys
from starter.cli import operations, render
from starter.cli import risk as cli_risk
from starter.cli.runner import (
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_USAGE,
    default_actor,
    fail,
    parse,
    run_with_client,
    run_with_service,
)
from starter.dev import demo
from starter.runtime.registration import register_search_attributes
from starter.runtime.settings import Settings
from starter.services.sessions import SessionService

# How often ``terminate --wait`` looks at the session while it winds down.
WAIT_POLL_SECONDS = 0.5
IDEMPOTENCY_KEY_MAX = 128  # the API's header limit

app = typer.Typer(
    name="sessionctl",
    help="Operate trading sessions: start, inspect, change and end them.",
    no_args_is_help=True,
    add_completion=False,
    # Locals would include the settings (database URL, API key): never print them.
    pretty_exceptions_show_locals=False,
)

SessionId = Annotated[str, typer.Argument(metavar="ID", help="The session id.")]
Actor = Annotated[
    str | None,
    typer.Option(help="Who acts, for the audit trail. Default: your login name."),
]
Reason = Annotated[str | None, typer.Option(help="Why, for the audit trail.")]


def _out() -> Console:
    return Console()


def _actor(actor: str | None) -> str:
    return default_actor(actor)


def _one_of(end: str | None, minutes: float | None) -> None:
    if (end is None) == (minutes is None):
        fail("give exactly one of --end and --minutes", EXIT_USAGE)


@app.command()
def start(
    account: Annotated[str, typer.Option(help="Account the session trades for.")],
    algorithm: Annotated[str, typer.Option(help="Algorithm that trades in it.")],
    loss_limit: Annotated[
        str, typer.Option(help="Largest loss allowed before it ends, e.g. 500 or 1250.50.")
    ],
    end: Annotated[
        str | None, typer.Option(help="Deadline, ISO 8601 with a zone: 2030-01-31T17:00:00Z.")
    ] = None,
    minutes: Annotated[
        float | None, typer.Option(help="Deadline this many minutes from now.")
    ] = None,
    session_id: Annotated[
        str | None, typer.Option(help="Session id; a new one is generated if omitted.")
    ] = None,
    start_at: Annotated[
        str | None, typer.Option("--start", help="When trading may begin (ISO 8601). Default: now.")
    ] = None,
    threshold: Annotated[
        list[float] | None,
        typer.Option(help="Warning threshold as a fraction (0.8); repeat for more."),
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Repeat-safe key: the same key returns the same session.")
    ] = None,
) -> None:
    """Start a session (--end or --minutes from now); repeating it returns the same one."""
    _one_of(end, minutes)
    if idempotency_key is not None and not 0 < len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
        fail(f"idempotency key: 1 to {IDEMPOTENCY_KEY_MAX} characters", EXIT_INVALID)
    end_time: object = end
    if minutes is not None:
        end_time = datetime.now(UTC) + timedelta(minutes=minutes)
    request = parse(
        StartSessionBody,
        {
            "session_id": session_id,
            "account_id": account,
            "algorithm_id": algorithm,
            "start_time": start_at,
            "end_time": end_time,
            "loss_limit": loss_limit,
            "warning_thresholds": threshold or None,
        },
    )
    session, created = run_with_service(lambda s: s.start_session(request, idempotency_key))
    out = _out()
    verb = "started" if created else "already exists; nothing new was started"
    out.print(f"Session {session.id} {verb}.", highlight=False)
    # The workflow has only just been asked to start: no live view to expect yet.
    out.print(render.session_details(session, expect_live=False))


@app.command("list")
def list_sessions(
    status: Annotated[
        SessionStatus | None, typer.Option(case_sensitive=False, help="Only this status.")
    ] = None,
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
) -> None:
    """List sessions, newest first, as a table."""
    sessions = run_with_service(lambda s: s.list_sessions(status, account, limit))
    out = _out()
    if not sessions:
        out.print("No sessions match.")
        return
    out.print(render.sessions_table(sessions))


@app.command()
def show(session_id: SessionId) -> None:
    """A session's details and, while it runs, the workflow's live view."""
    session = run_with_service(lambda s: s.get_session(session_id))
    _out().print(render.session_details(session))


@app.command()
def terminate(
    session_id: SessionId,
    reason: Annotated[str, typer.Option(help="Why it ends now (recorded and shown).")],
    actor: Actor = None,
    wait: Annotated[
        bool, typer.Option(help="Wait until it has wound down and ended TERMINATED.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits at most.")] = 60.0,
) -> None:
    """End a session now: halt, cancel, flatten, settle; it ends TERMINATED."""
    request = parse(TerminateBody, {"reason": reason, "actor": _actor(actor)})
    out = _out()

    async def work(service: SessionService) -> SessionOut | None:
        await service.terminate(session_id, request)
        if not wait:
            return None
        with out.status(f"Waiting for session {session_id} to wind down…"):
            return await _until_ended(service, session_id, timeout)

    ended = run_with_service(work)
    out.print(f"Termination of session {session_id} requested by {request.actor}.")
    if ended is not None:
        out.print(render.session_details(ended))
        if ended.status is not SessionStatus.TERMINATED:
            fail(f"session {session_id!r} ended {ended.status}, not TERMINATED", EXIT_ERROR)


async def _until_ended(service: SessionService, session_id: str, timeout: float) -> SessionOut:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        session = await service.get_session(session_id)
        if is_terminal(session.status):
            return session
        if asyncio.get_running_loop().time() > deadline:
            fail(
                f"session {session_id!r} is still {session.status} after {timeout:g} s", EXIT_ERROR
            )
        await asyncio.sleep(WAIT_POLL_SECONDS)


@app.command()
def extend(
    session_id: SessionId,
    end: Annotated[str | None, typer.Option(help="New deadline, ISO 8601 with a zone.")] = None,
    minutes: Annotated[
        float | None, typer.Option(help="Minutes to add to the current deadline.")
    ] = None,
    actor: Actor = None,
    reason: Reason = None,
) -> None:
    """Move the deadline later (--end, or --minutes added to the current deadline)."""
    _one_of(end, minutes)
    fields = {"end_time": end, "actor": _actor(actor), "reason": reason}
    given = parse(ExtendDeadlineBody, fields) if end is not None else None

    async def work(service: SessionService) -> SessionView:
        request = given
        if request is None:
            current = await service.get_session(session_id)
            known_end = current.live.end_time if current.live is not None else current.end_time
            later = known_end + timedelta(minutes=minutes or 0)
            request = parse(ExtendDeadlineBody, {**fields, "end_time": later})
        return await service.extend_deadline(session_id, request)

    view = run_with_service(work)
    out = _out()
    out.print(f"Deadline of session {session_id} is now {render.moment(view.end_time)}.")
    out.print(render.live_details(view))


@app.command("set-loss-limit")
def set_loss_limit(
    session_id: SessionId,
    amount: Annotated[str, typer.Argument(help="The new loss limit, e.g. 750.")],
    actor: Actor = None,
    reason: Reason = None,
) -> None:
    """Change the loss limit; below the current loss the session ends LOSS_LIMIT at once."""
    request = parse(
        SetLossLimitBody, {"loss_limit": amount, "actor": _actor(actor), "reason": reason}
    )
    view = run_with_service(lambda s: s.set_loss_limit(session_id, request))
    out = _out()
    out.print(f"Loss limit of session {session_id} is now {render.money(view.loss_limit)}.")
    out.print(render.live_details(view))


def _set_paused(session_id: str, paused: bool, actor: str | None, reason: str | None) -> None:
    request = parse(GateChangeBody, {"actor": _actor(actor), "reason": reason})
    run_with_service(lambda s: s.set_paused(session_id, paused, request))
    what = "pause (gate closes)" if paused else "resume (gate opens)"
    _out().print(f"Session {session_id}: {what} requested by {request.actor}.")


@app.command()
def pause(session_id: SessionId, actor: Actor = None, reason: Reason = None) -> None:
    """Close the trading gate; the session and its clock go on."""
    _set_paused(session_id, True, actor, reason)


@app.command()
def resume(session_id: SessionId, actor: Actor = None, reason: Reason = None) -> None:
    """Open the trading gate again."""
    _set_paused(session_id, False, actor, reason)


@app.command("retry-cleanup")
def retry_cleanup(session_id: SessionId, actor: Actor = None, reason: Reason = None) -> None:
    """Resume a termination parked in CLEANUP_FAILED, from the failed step."""
    request = parse(RetryCleanupBody, {"actor": _actor(actor), "reason": reason})
    run_with_service(lambda s: s.retry_cleanup(session_id, request))
    _out().print(f"Session {session_id}: clean-up retry requested by {request.actor}.")


@app.command()
def gate(session_id: SessionId) -> None:
    """The pre-trade check: may the session's algorithm place an order now?"""
    answer = run_with_service(lambda s: s.gate(session_id))
    _out().print(render.gate_line(answer))


@app.command("register-search-attributes")
def register_search_attributes_command() -> None:
    """Add the project's search attributes to the configured namespace (idempotent)."""

    async def work(client: Client, settings: Settings) -> tuple[list[str], str, str]:
        added = await register_search_attributes(client, settings.temporal_namespace)
        return added, settings.temporal_namespace, settings.resolved_temporal_address

    added, namespace, address = run_with_client(work)
    if added:
        _out().print(f"Added to namespace {namespace} at {address}: {', '.join(added)}.")
    else:
        _out().print(f"Namespace {namespace} at {address} has every search attribute already.")


@app.command()
def dev() -> None:
    """Run the embedded stack (PostgreSQL, Temporal, worker, API) until Ctrl-C."""
    # Imported here: it loads the embedded PostgreSQL package, which no other command needs.
    from starter.dev import stack as dev_stack

    raise typer.Exit(dev_stack.main())


# The live demo keeps its own options and help (starter/dev/demo.py); sessionctl only names it.
app.command("demo")(demo.main)
app.add_typer(cli_keys.app, name="keys")
app.command()(cli_risk.kill)
app.command()(cli_risk.rearm)
app.command("kill-status")(cli_risk.kill_status)
# The operator's desk (starter/cli/operations.py).
app.command()(operations.alerts)
app.command()(operations.ack)
app.command()(operations.audit)
app.command()(operations.top)
app.command("risk")(cli_risk.account_risk)
app.command("account-limit")(cli_risk.account_limit)
