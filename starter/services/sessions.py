"""What the API and the CLI do, in one place: start, inspect, terminate, record fills/marks."""

import logging
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from domain.limits import DEFAULT_WARNING_THRESHOLDS, session_loss
from domain.risk import (
    TradingState,
    drawdown,
    equity,
    merge_order_limits,
    order_limits_dict,
    trading_state,
)
from domain.session import (
    OPEN_STATUSES,
    TimeRefusal,
    check_new_session_times,
    is_open,
    workflow_id_for,
)
from domain.session import (
    gate_of as domain_gate_of,
)
from domain.session_messages import (
    ExtendDeadlineInput,
    GateChangeInput,
    SessionView,
    SetLossLimitInput,
    TerminateInput,
)
from domain.status import SessionStatus, is_terminal
from domain.sweep import CheckSource
from domain.termination_messages import RetryCleanupInput
from starter.api.schemas import (
    ExtendDeadlineBody,
    GateChangeBody,
    GateOut,
    LimitUsage,
    RetryCleanupBody,
    SessionOut,
    SessionRiskOut,
    SetLossLimitBody,
    StartSessionBody,
    TerminateBody,
)
from starter.runtime.metrics import Metrics
from starter.runtime.settings import Settings
from starter.services.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ServiceError,
    UnavailableError,
    WorkflowClosedError,
)
from starter.services.kill_switch import refuse_if_engaged
from starter.services.session_start import check_same_session, start_session_workflow
from store.db import ping
from store.fleet import FleetRepository
from store.ledger import LedgerRepository, PnlFigures
from store.models import TradingSession
from store.sessions import NewSession, SessionNotFoundError, SessionRepository
from workflows.session import TradingSessionWorkflow

log = logging.getLogger(__name__)

__all__ = ["OPEN_STATUSES", "SessionService", "gate_of", "session_handle", "session_row"]


class SessionService:
    def __init__(
        self,
        client: Client,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: Metrics | None = None,
    ) -> None:
        self.client = client
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.metrics = metrics or Metrics()

    async def start_session(
        self, request: StartSessionBody, idempotency_key: str | None = None
    ) -> tuple[SessionOut, bool]:
        """Create the row and start its workflow; a repeat returns the same session.

        The workflow is started on every repeat too (a no-op while it runs), so a crash
        between the insert and the start heals when the client retries.
        """
        now = datetime.now(UTC)
        start = request.start_time or now
        self._validate_times(start, request.end_time, now)
        async with self.sessionmaker.begin() as db:
            repo = SessionRepository(db)
            if request.session_id is None and idempotency_key is not None:
                known = await repo.find_by_idempotency_key(idempotency_key)
                if known is not None:
                    return await self._ensure_started(known), False
            # A scope under an engaged kill switch takes no new session (409).
            await refuse_if_engaged(db, request.account_id, request.algorithm_id)
            session_id = request.session_id or uuid.uuid4().hex
            thresholds = request.warning_thresholds or [*DEFAULT_WARNING_THRESHOLDS]
            row, created = await repo.insert_if_absent(
                NewSession(
                    id=session_id,
                    account_id=request.account_id,
                    algorithm_id=request.algorithm_id,
                    start_time=start,
                    end_time=request.end_time,
                    loss_limit=request.loss_limit,
                    warning_thresholds=sorted(set(thresholds)),
                    idempotency_key=idempotency_key,
                    workflow_id=workflow_id_for(session_id),
                    reducing_at=request.reducing_at,
                    max_drawdown=request.max_drawdown,
                    profit_target=request.profit_target,
                    order_limits=order_limits_dict(
                        merge_order_limits(
                            request.order_limits.model_dump() if request.order_limits else {},
                            self.settings.default_order_limits(),
                        )
                    ),
                )
            )
            if not created:
                check_same_session(row, request)
        return await self._ensure_started(row), created

    def _validate_times(self, start: datetime, end: datetime, now: datetime) -> None:
        try:
            check_new_session_times(
                start,
                end,
                now,
                max_ahead=timedelta(days=self.settings.max_start_ahead_days),
                longest=timedelta(hours=self.settings.max_session_hours),
            )
        except TimeRefusal as refusal:
            raise InvalidRequestError(refusal.message, field=refusal.field) from refusal

    async def _ensure_started(self, row: TradingSession) -> SessionOut:
        """The session as it really is once its workflow is started (a no-op while it runs).

        An ended session is answered as stored: its status and end show it ended. An open
        row whose workflow has closed (terminated from the Web UI or the CLI, failed) is not
        running, whatever the row says: its gate is closed at once and the caller gets a 409
        ``workflow_closed``; the reconciler winds it down within one interval.
        """
        if is_terminal(row.status):
            return SessionOut.model_validate(row)
        try:
            await start_session_workflow(self.client, row, self.settings)
        except WorkflowAlreadyStartedError:
            return await self._closed_workflow(row.id)
        return SessionOut.model_validate(row)

    async def _closed_workflow(self, session_id: str) -> SessionOut:
        detail = "its workflow has closed (terminated or failed): the reconciler winds it down"
        async with self.sessionmaker.begin() as db:
            row = await SessionRepository(db).get(session_id, for_update=True)
            if is_terminal(row.status):  # it ended between our read and the start
                return SessionOut.model_validate(row)
            await FleetRepository(db).close_gates([session_id], detail, cause="workflow_closed")
            status = row.status
        raise WorkflowClosedError(
            f"session {session_id!r} is {status} but {detail}; it takes no more orders"
        )

    async def get_session(self, session_id: str) -> SessionOut:
        async with self.sessionmaker() as db:
            row = await session_row(SessionRepository(db), session_id)
            sweeps = await FleetRepository(db).last_sweeps(self.settings.sweep_shards)
            figures = await LedgerRepository(db).pnl(session_id)
        out = session_out(row, sweeps, self.settings.sweep_shards)
        out.risk = risk_of(row, figures)
        if not is_terminal(out.status):
            out.live = await self.live_status(session_id)
        return out

    async def live_status(self, session_id: str) -> SessionView | None:
        """The workflow's own view, or None when it cannot answer (not started, closed)."""
        try:
            return await self.workflow_handle(session_id).query(TradingSessionWorkflow.get_status)
        except RPCError as err:
            log.info("live status of %s unavailable: %s", session_id, err.message)
            return None

    async def list_sessions(
        self,
        status: SessionStatus | None = None,
        account_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[SessionOut]:
        async with self.sessionmaker() as db:
            rows = await SessionRepository(db).list(
                status=status, account_id=account_id, limit=limit, offset=offset
            )
            sweeps = await FleetRepository(db).last_sweeps(self.settings.sweep_shards)
        return [session_out(row, sweeps, self.settings.sweep_shards) for row in rows]

    async def terminate(self, session_id: str, request: TerminateBody) -> SessionOut:
        """End the session through the workflow's ``terminate`` update; the workflow audits
        who asked and why. Answers once the session is ending; a second request is a 409."""
        async with self.sessionmaker() as db:
            row = await session_row(SessionRepository(db), session_id)
        if is_terminal(row.status):
            raise ConflictError(f"session {session_id!r} already ended ({row.status})")
        await self._update(
            session_id,
            TradingSessionWorkflow.terminate,
            TerminateInput(reason=request.reason, actor=request.actor),
            field="reason",
            refused=ConflictError,
        )
        return await self.get_session(session_id)

    async def extend_deadline(self, session_id: str, request: ExtendDeadlineBody) -> SessionView:
        """Move the deadline later through the workflow's validated update."""
        await self._require_running(session_id)
        return await self._update(
            session_id,
            TradingSessionWorkflow.extend_deadline,
            ExtendDeadlineInput(
                end_time=request.end_time, actor=request.actor, reason=request.reason
            ),
            field="end_time",
        )

    async def set_loss_limit(self, session_id: str, request: SetLossLimitBody) -> SessionView:
        """Change the loss limit through the workflow's validated update."""
        await self._require_running(session_id)
        return await self._update(
            session_id,
            TradingSessionWorkflow.set_loss_limit,
            SetLossLimitInput(
                loss_limit=request.loss_limit, actor=request.actor, reason=request.reason
            ),
            field="loss_limit",
        )

    async def set_paused(
        self, session_id: str, paused: bool, request: GateChangeBody
    ) -> SessionOut:
        """Close (pause) or open (resume) the trading gate; the session goes on. A change
        that changes nothing (already paused, not paused) is refused with a 409."""
        await self._require_running(session_id)
        update = (
            TradingSessionWorkflow.pause_trading
            if paused
            else TradingSessionWorkflow.resume_trading
        )
        await self._update(
            session_id,
            update,
            GateChangeInput(actor=request.actor, reason=request.reason),
            field=None,
            refused=ConflictError,
        )
        return await self.get_session(session_id)

    async def retry_cleanup(self, session_id: str, request: RetryCleanupBody) -> SessionOut:
        """Resume a termination parked in CLEANUP_FAILED, from the step that gave up; the
        workflow refuses it (409) unless the session is parked, and a second click."""
        async with self.sessionmaker() as db:
            row = await session_row(SessionRepository(db), session_id)
        if row.status is not SessionStatus.CLEANUP_FAILED:
            raise ConflictError(f"session {session_id!r} is {row.status}, not CLEANUP_FAILED")
        await self._update(
            session_id,
            TradingSessionWorkflow.retry_cleanup,
            RetryCleanupInput(actor=request.actor, reason=request.reason),
            field=None,
            refused=ConflictError,
        )
        return await self.get_session(session_id)

    async def gate(self, session_id: str) -> GateOut:
        """Open only while the session is ACTIVE and not paused or halting; its trading state
        says whether only position-reducing orders pass (REDUCING)."""
        async with self.sessionmaker() as db:
            row = await session_row(SessionRepository(db), session_id)
            figures = await LedgerRepository(db).pnl(session_id)
        gate = gate_of(row)
        gate.trading_state = state_of(row, figures)
        return gate

    async def _require_running(self, session_id: str) -> TradingSession:
        async with self.sessionmaker() as db:
            row = await session_row(SessionRepository(db), session_id)
        if not is_open(row.status):
            raise ConflictError(f"session {session_id!r} is {row.status}: it can no longer change")
        return row

    async def _update(
        self,
        session_id: str,
        update: Any,
        argument: Any,
        *,
        field: str | None,
        refused: type[ServiceError] = InvalidRequestError,
    ) -> SessionView:
        """Run one of the workflow's updates; its validator's refusal is ``refused``, and a
        change whose activity gave up (the database refused or was out) is a 503."""
        try:
            view: SessionView = await self.workflow_handle(session_id).execute_update(
                update, argument
            )
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            message = str(cause.message if hasattr(cause, "message") else cause)
            if isinstance(cause, ApplicationError) and cause.type == "HandlerFailed":
                raise UnavailableError(message) from err
            raise refused(message, field=field) from err
        except RPCError as err:
            raise ConflictError(f"session {session_id!r} cannot change: {err.message}") from err
        return view

    def workflow_handle(self, session_id: str) -> WorkflowHandle[TradingSessionWorkflow, object]:
        return session_handle(self.client, session_id)

    async def ping_database(self) -> None:
        """Raise unless the database answers a round trip."""
        async with self.sessionmaker() as db:
            await ping(db)

    async def account_of(self, session_id: str) -> str | None:
        """The account a session belongs to; None for an unknown session."""
        async with self.sessionmaker() as db:
            try:
                return (await SessionRepository(db).get(session_id)).account_id
            except SessionNotFoundError:
                return None

    async def count_by_status(self) -> dict[SessionStatus, int]:
        """How many sessions are in each status (the /metrics gauge)."""
        async with self.sessionmaker() as db:
            return await SessionRepository(db).count_by_status()


def session_handle(
    client: Client, session_id: str
) -> WorkflowHandle[TradingSessionWorkflow, object]:
    """The handle of a session's workflow, by its stable id."""
    return client.get_workflow_handle_for(TradingSessionWorkflow.run, workflow_id_for(session_id))


async def session_row(
    repo: SessionRepository, session_id: str, *, for_update: bool = False
) -> TradingSession:
    """The session's row; an unknown id is the API's 404."""
    try:
        return await repo.get(session_id, for_update=for_update)
    except SessionNotFoundError as err:
        raise NotFoundError(str(err)) from err


def session_out(row: TradingSession, sweeps: dict[int, datetime], shards: int) -> SessionOut:
    """The row as the API shows it; last checked is the newer of the row's own check (a fill,
    a mark, the workflow) and its shard's last sweep, which counts only while it is ACTIVE
    (the sweep checks nothing else)."""
    out = SessionOut.model_validate(row)
    swept_at = sweeps.get(row.shard_key % shards)
    if (
        swept_at is not None
        and row.status is SessionStatus.ACTIVE
        and swept_at >= row.start_time
        and (out.last_checked_at is None or swept_at > out.last_checked_at)
    ):
        out.last_checked_at, out.last_checked_by = swept_at, CheckSource.SWEEP.value
    return out


def state_of(row: TradingSession, figures: PnlFigures) -> TradingState:
    """The session's trading state now: HALTED with its gate closed, else from its loss."""
    return trading_state(
        halted=not gate_of(row).open,
        loss=session_loss(figures.realized_pnl, figures.unrealized_pnl),
        loss_limit=row.loss_limit,
        reducing_at=row.reducing_at,
    )


def risk_of(row: TradingSession, figures: PnlFigures) -> SessionRiskOut:
    """Every limit of the session with its usage, from the stored row and live PnL."""
    loss = session_loss(figures.realized_pnl, figures.unrealized_pnl)
    now_equity = equity(figures.realized_pnl, figures.unrealized_pnl)
    peak = max(row.peak_equity, now_equity)
    fall = drawdown(peak, now_equity)

    def pct(value: Decimal, limit: Decimal | None) -> float | None:
        return None if limit is None else round(float(100 * value / limit), 2)

    return SessionRiskOut(
        trading_state=state_of(row, figures).value,
        reducing_at=row.reducing_at,
        equity=now_equity,
        peak_equity=peak,
        limits=[
            LimitUsage(
                name="loss_limit",
                limit=row.loss_limit,
                value=loss,
                used_pct=pct(loss, row.loss_limit),
            ),
            LimitUsage(
                name="max_drawdown",
                limit=row.max_drawdown,
                value=fall,
                used_pct=pct(fall, row.max_drawdown),
            ),
            LimitUsage(
                name="profit_target",
                limit=row.profit_target,
                value=now_equity,
                used_pct=pct(max(now_equity, Decimal(0)), row.profit_target),
            ),
        ],
        order_limits=dict(row.order_limits),
    )


def gate_of(row: TradingSession) -> GateOut:
    """The trading gate of a session row; orders check it under the row lock."""
    gate = domain_gate_of(row.status, row.gate_open, row.gate_reason)
    return GateOut(session_id=row.id, open=gate.open, status=row.status, reason=gate.reason)
