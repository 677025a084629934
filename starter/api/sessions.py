"""Routes of a session's life: start, list, read, terminate, extend, loss limit, gate."""

from typing import Annotated, TypeVar

from fastapi import APIRouter, Header, Query, Response, status

from domain.session_messages import SessionView
from domain.status import SessionStatus
from domain.text import Identifier
from starter.api.auth import (
    ChangeSession,
    ListSessions,
    ReadGate,
    ReadSession,
    StartSession,
    TerminateSession,
    check_account,
)
from starter.api.body import StrictJsonRoute
from starter.api.deps import SessionsDep
from starter.api.schemas import (
    ExtendDeadlineBody,
    GateChangeBody,
    GateOut,
    RetryCleanupBody,
    SessionIdPath,
    SessionOut,
    SetLossLimitBody,
    StartSessionBody,
    TerminateBody,
)
from starter.services.principals import Principal

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]

router = APIRouter(prefix="/sessions", tags=["sessions"], route_class=StrictJsonRoute)


@router.post("", status_code=status.HTTP_201_CREATED)
async def start_session(
    body: StartSessionBody,
    sessions: SessionsDep,
    principal: StartSession,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> SessionOut:
    """Start a session; repeating it (same id or Idempotency-Key) returns the same one."""
    check_account(principal, body.account_id)
    session, created = await sessions.start_session(body, idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
    return session


@router.get("")
async def list_sessions(
    sessions: SessionsDep,
    principal: ListSessions,
    status_filter: Annotated[SessionStatus | None, Query(alias="status")] = None,
    account_id: Annotated[Identifier | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[SessionOut]:
    """Sessions, newest first; a trader's key sees its own account's only."""
    if principal.account_id is not None:
        check_account(principal, account_id or principal.account_id)
        account_id = principal.account_id
    return await sessions.list_sessions(status_filter, account_id, limit, offset)


@router.get("/{session_id}")
async def get_session(
    session_id: SessionIdPath, sessions: SessionsDep, _: ReadSession
) -> SessionOut:
    """The stored session, with the workflow's live view while it runs."""
    return await sessions.get_session(session_id)


@router.post("/{session_id}/terminate", status_code=status.HTTP_202_ACCEPTED)
async def terminate_session(
    session_id: SessionIdPath,
    body: TerminateBody,
    sessions: SessionsDep,
    principal: TerminateSession,
) -> SessionOut:
    """Ask the session to end now; it winds down and ends TERMINATED."""
    return await sessions.terminate(session_id, _as(principal, body))


@router.post("/{session_id}/extend")
async def extend_deadline(
    session_id: SessionIdPath,
    body: ExtendDeadlineBody,
    sessions: SessionsDep,
    principal: ChangeSession,
) -> SessionView:
    """Move the deadline later (Temporal update `extend_deadline`); 422 if refused."""
    return await sessions.extend_deadline(session_id, _as(principal, body))


@router.post("/{session_id}/loss-limit")
async def set_loss_limit(
    session_id: SessionIdPath,
    body: SetLossLimitBody,
    sessions: SessionsDep,
    principal: ChangeSession,
) -> SessionView:
    """Change the loss limit (update `set_loss_limit`); below the loss it ends at once."""
    return await sessions.set_loss_limit(session_id, _as(principal, body))


@router.post("/{session_id}/pause", status_code=status.HTTP_202_ACCEPTED)
async def pause_session(
    session_id: SessionIdPath,
    body: GateChangeBody,
    sessions: SessionsDep,
    principal: ChangeSession,
) -> SessionOut:
    """Close the trading gate without ending the session; the clock keeps running."""
    return await sessions.set_paused(session_id, True, _as(principal, body))


@router.post("/{session_id}/resume", status_code=status.HTTP_202_ACCEPTED)
async def resume_session(
    session_id: SessionIdPath,
    body: GateChangeBody,
    sessions: SessionsDep,
    principal: ChangeSession,
) -> SessionOut:
    """Open the trading gate again."""
    return await sessions.set_paused(session_id, False, _as(principal, body))


@router.post("/{session_id}/retry-cleanup", status_code=status.HTTP_202_ACCEPTED)
async def retry_cleanup(
    session_id: SessionIdPath,
    body: RetryCleanupBody,
    sessions: SessionsDep,
    principal: ChangeSession,
) -> SessionOut:
    """Resume a termination that stopped in CLEANUP_FAILED (signal `retry_cleanup`)."""
    return await sessions.retry_cleanup(session_id, _as(principal, body))


@router.get("/{session_id}/gate")
async def trading_gate(session_id: SessionIdPath, sessions: SessionsDep, _: ReadGate) -> GateOut:
    """Pre-trade check: may the session's algorithm place an order now?"""
    return await sessions.gate(session_id)


_Acting = TypeVar(
    "_Acting",
    TerminateBody,
    ExtendDeadlineBody,
    SetLossLimitBody,
    GateChangeBody,
    RetryCleanupBody,
)


def _as(principal: Principal, body: _Acting) -> _Acting:
    """The body with the key's identity as actor: the body's own actor is only a display name."""
    return body.model_copy(update={"actor": principal.recorded_actor(body.actor)})
