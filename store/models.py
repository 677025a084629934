"""SQLAlchemy models. Money and quantities are NUMERIC, times are timestamptz (UTC)."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from domain.status import SessionStatus

Money = Numeric(24, 8)
Quantity = Numeric(24, 8)
# domain.positions.AVERAGE_PRICE_SCALE: an average price is kept finer than money.
AveragePrice = Numeric(36, 20)


class StatusText(TypeDecorator[SessionStatus]):
    """A session status stored as its name in VARCHAR(20), read back as :class:`SessionStatus`."""

    impl = String(20)
    cache_ok = True

    def process_bind_param(self, value: SessionStatus | str | None, dialect: Dialect) -> str | None:
        return None if value is None else SessionStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> SessionStatus | None:
        return None if value is None else SessionStatus(value)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), Decimal: Money}


class TradingSession(Base):
    __tablename__ = "trading_sessions"
    # The sweeps read the open sessions only (migration 0005).
    __table_args__ = (
        Index(
            "ix_trading_sessions_open",
            "status",
            postgresql_where=text("status IN ('PENDING', 'ACTIVE', 'ENDING', 'CLEANUP_FAILED')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    algorithm_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[SessionStatus] = mapped_column(StatusText(), index=True)
    start_time: Mapped[datetime]
    end_time: Mapped[datetime]
    loss_limit: Mapped[Decimal]
    warning_thresholds: Mapped[list[float]] = mapped_column(JSONB)
    realized_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0))
    end_reason: Mapped[str | None] = mapped_column(String(20))
    end_detail: Mapped[str | None] = mapped_column(Text)
    ended_at: Mapped[datetime | None]
    gate_open: Mapped[bool] = mapped_column(default=True)
    gate_reason: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    workflow_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    # A stable hash of the id, computed by the database (migration 0005): the sweep's shard.
    shard_key: Mapped[int] = mapped_column(
        BigInteger, Computed("(('x' || substr(md5(id), 1, 8))::bit(32)::bigint)", persisted=True)
    )
    # The last check other than a sweep's: by a fill, a mark or the workflow itself.
    last_checked_at: Mapped[datetime | None]
    last_checked_by: Mapped[str | None] = mapped_column(String(16))
    # When a fill, mark or market batch last woke the workflow: the ingest window's start.
    last_woken_at: Mapped[datetime | None]
    # Why it was last woken (domain.sweep.WakeReason): a reached limit is signalled once.
    last_wake_reason: Mapped[str | None] = mapped_column(String(16))
    # The LossUsedPct the workflow last published, and the loss thresholds it warned about.
    published_loss_pct: Mapped[float] = mapped_column(Float, server_default="0")
    loss_warnings_sent: Mapped[list[float]] = mapped_column(JSONB, server_default="[]")
    # Risk controls (migration 0009): the share of the loss limit where REDUCING starts, the
    # drawdown limit and profit target, the pre-trade checks (domain.risk.OrderLimits as
    # strings), the running peak of equity and the trading state the workflow last published.
    reducing_at: Mapped[float | None] = mapped_column(Float)
    max_drawdown: Mapped[Decimal | None]
    profit_target: Mapped[Decimal | None]
    order_limits: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    peak_equity: Mapped[Decimal] = mapped_column(server_default="0")
    trading_state: Mapped[str] = mapped_column(String(10), server_default="ACTIVE")
    drawdown_warnings_sent: Mapped[list[float]] = mapped_column(JSONB, server_default="[]")


class KillSwitch(Base):
    """An engagement of the emergency kill switch over a scope; engaged until re-armed."""

    __tablename__ = "kill_switches"
    # One engaged switch per scope (migration 0009): a second press finds the first.
    __table_args__ = (
        Index(
            "uq_kill_switches_engaged",
            "scope_kind",
            text("coalesce(scope_value, '')"),
            unique=True,
            postgresql_where=text("rearmed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    scope_kind: Mapped[str] = mapped_column(String(10))  # account | algorithm | all
    scope_value: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    engaged_by: Mapped[str] = mapped_column(String(200))
    engaged_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sessions_targeted: Mapped[int] = mapped_column(server_default="0")
    rearmed_at: Mapped[datetime | None]
    rearmed_by: Mapped[str | None] = mapped_column(String(200))
    rearm_reason: Mapped[str | None] = mapped_column(Text)
    # The end reason its sessions record (migration 0011); None: TERMINATED.
    end_reason: Mapped[str | None] = mapped_column(String(20))


class KillSwitchSession(Base):
    """A session a kill switch closed, and whether its workflow was told to terminate."""

    __tablename__ = "kill_switch_sessions"

    kill_switch_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("kill_switches.id", ondelete="CASCADE"), primary_key=True
    )
    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    signalled_at: Mapped[datetime | None]
    signal_error: Mapped[str | None] = mapped_column(Text)


class MarketMark(Base):
    """The latest price of a symbol for the whole market (``POST /marks``)."""

    __tablename__ = "market_marks"

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    price: Mapped[Decimal]
    marked_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class FleetSweep(Base):
    """When a shard of the fleet was last swept, and what the sweep found."""

    __tablename__ = "fleet_sweeps"

    shard_count: Mapped[int] = mapped_column(primary_key=True)
    shard: Mapped[int] = mapped_column(primary_key=True)
    due_at: Mapped[datetime]
    swept_at: Mapped[datetime]
    sessions_checked: Mapped[int]
    signals_sent: Mapped[int]


class Position(Base):
    __tablename__ = "positions"
    # Migration 0008: the reconciler finds ended sessions left holding a position.
    __table_args__ = (
        Index("ix_positions_open", "session_id", postgresql_where=text("quantity <> 0")),
    )

    session_id: Mapped[str] = mapped_column(
        ForeignKey("trading_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    average_price: Mapped[Decimal] = mapped_column(AveragePrice)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Fill(Base):
    __tablename__ = "fills"
    __table_args__ = (
        UniqueConstraint("session_id", "fill_id", name="uq_fills_session_fill"),
        Index("ix_fills_late_session", "session_id", postgresql_where=text("late")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("trading_sessions.id", ondelete="CASCADE"), index=True
    )
    fill_id: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    price: Mapped[Decimal]
    fee: Mapped[Decimal] = mapped_column(default=Decimal(0))
    realized_pnl: Mapped[Decimal]
    executed_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Recorded after the session's trading ended (status ENDING or later): migration 0008.
    late: Mapped[bool] = mapped_column(server_default=false(), default=False)
    # The session's order this fill executes, when the sender named it.
    order_id: Mapped[str | None] = mapped_column(String(128))


class Mark(Base):
    __tablename__ = "marks"
    __table_args__ = (Index("ix_marks_latest", "session_id", "symbol", "marked_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("trading_sessions.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    price: Mapped[Decimal]
    marked_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AuditEvent(Base):
    """Append-only: a database trigger refuses UPDATE and DELETE."""

    __tablename__ = "audit_events"
    # Exports read a window of time in (occurred_at, id) order.
    __table_args__ = (Index("ix_audit_events_occurred_at", "occurred_at", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    workflow_id: Mapped[str | None] = mapped_column(String(128))
    run_id: Mapped[str | None] = mapped_column(String(64))
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Notification(Base):
    """Outbox: written in the transaction of the event it announces, delivered afterwards."""

    __tablename__ = "notifications"
    # Delivery looks for what is still undelivered; the partial index stays small.
    __table_args__ = (
        Index("ix_notifications_undelivered", "id", postgresql_where=text("delivered_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # None only for operator notifications about no session (a database outage).
    session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    account_id: Mapped[str | None] = mapped_column(String(64))
    # "account": the account's traders; "operators": an alert, for operators only.
    audience: Mapped[str] = mapped_column(String(16), server_default="account")
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    delivered_at: Mapped[datetime | None]


class Order(Base):
    """Orders of the paper broker; a real broker keeps its own and is reached via the port."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("session_id", "order_id", name="uq_orders_session_order"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("trading_sessions.id", ondelete="CASCADE"), index=True
    )
    order_id: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    limit_price: Mapped[Decimal | None]
    status: Mapped[str] = mapped_column(String(12))
    # "dead_man": cancelled by the broker's own timer; None: open, or by the termination.
    cancelled_by: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Portfolio(Base):
    __tablename__ = "portfolios"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    cash: Mapped[Decimal] = mapped_column(default=Decimal(0))
    realized_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class PortfolioSettlement(Base):
    """One row per ended session: its presence is what makes the settlement happen once."""

    __tablename__ = "portfolio_settlements"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64))
    realized_pnl: Mapped[Decimal]
    settled_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PerformanceSnapshot(Base):
    __tablename__ = "performance_snapshots"
    # As migration 0003 creates it: a session's snapshots in time order.
    __table_args__ = (Index("ix_performance_snapshots_session_id", "session_id", "taken_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(12))  # periodic | final
    taken_at: Mapped[datetime]
    realized_pnl: Mapped[Decimal]
    unrealized_pnl: Mapped[Decimal]
    fills: Mapped[int]
    round_trips: Mapped[int]
    win_rate: Mapped[float | None]
    peak_pnl: Mapped[Decimal]
    max_drawdown: Mapped[Decimal]
    duration_seconds: Mapped[float]
    loss_used_pct: Mapped[float]
    time_used_pct: Mapped[float]
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)


class TerminationStep(Base):
    """A step of a session's termination that has completed: the idempotency record."""

    __tablename__ = "termination_steps"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    step: Mapped[str] = mapped_column(String(32), primary_key=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    completed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Algorithm(Base):
    """Per-algorithm control settings: where halts are pushed besides LISTEN/NOTIFY."""

    __tablename__ = "algorithms"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    halt_webhook_url: Mapped[str | None] = mapped_column(Text)
    # Signs the halt webhook's body (domain.signing), as a subscription's secret does.
    halt_webhook_secret: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    account_id: Mapped[str | None] = mapped_column(String(64))  # None: every account
    # "account": notifications of one account (or all); "operators": every alert.
    scope: Mapped[str] = mapped_column(String(16), server_default="account")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    notification_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    delivered_at: Mapped[datetime | None]


class Alert(Base):
    """Something an operator must look at: cleanup failed, database unreachable, ..."""

    __tablename__ = "alerts"
    # Open alerts (not acknowledged) are what operators and the gauge read; kept small.
    __table_args__ = (
        Index("ix_alerts_open", "kind", postgresql_where=text("acknowledged_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    account_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    resolved_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))


class ApiKey(Base):
    """An API key: its public id, the SHA-256 of the secret (never the secret) and its role."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]


class JobCount(Base):
    """Background jobs by kind and outcome (and loss checks by source), per hour: what the
    workers counted, added up, for ``/jobs/stats``."""

    __tablename__ = "job_counts"

    hour: Mapped[datetime] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class AccountLimit(Base):
    """An account's limits across its sessions (migration 0011): the daily loss limit, and the
    UTC day its warning was sent and its limit reached (each at most once a day)."""

    __tablename__ = "account_limits"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    daily_loss_limit: Mapped[Decimal | None]
    warned_on: Mapped[date | None]
    breached_on: Mapped[date | None]
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class BrokerCancelAfter(Base):
    """The paper broker's dead-man's switch: past ``deadline`` the account's open orders are
    cancelled by the broker itself, unless re-armed first (``Broker.cancel_all_after``)."""

    __tablename__ = "broker_cancel_after"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    deadline: Mapped[datetime]
    armed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    triggered_at: Mapped[datetime | None]
