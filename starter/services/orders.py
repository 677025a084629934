"""Orders of a session's algorithm: the pre-trade check is enforced where they are booked."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.orders import OrderStatus
from domain.risk import OrderContext, Refusal, check_order, order_limits_from
from starter.api.schemas import OrderBody, OrderOut
from starter.runtime.metrics import Metrics
from starter.services.errors import ConflictError, ServiceError
from starter.services.sessions import gate_of, session_row, state_of
from store.audit import AuditRepository
from store.ledger import LedgerRepository
from store.models import Order, TradingSession
from store.orders import NewOrder, OrderRepository
from store.risk import RiskRepository
from store.sessions import SessionRepository


class GateClosedError(ConflictError):
    """The session's trading gate refused the order: paused, halting, ended or not started."""

    code = "gate_closed"


class OrderRefusedError(ConflictError):
    """A pre-trade check refused the order; ``code`` is its reason (domain.risk.Refusal)."""

    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.code = refusal.value


class OrderService:
    """A session's orders, booked only through an open trading gate and the pre-trade checks
    (domain.risk.check_order), under the session's row lock."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], metrics: Metrics | None = None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.metrics = metrics or Metrics()

    async def place_order(self, session_id: str, request: OrderBody) -> tuple[OrderOut, bool]:
        """Book an OPEN order if the gate is open and every pre-trade check passes; a repeated
        order id returns the stored order.

        The gate and the checks are read under the session's row lock, the lock that closing
        the gate and every fill and mark take too, so no order is booked after a halt has
        closed the gate, and two orders racing the rate or open-order limit see each other.
        """
        order = NewOrder(
            order_id=request.order_id,
            symbol=request.symbol,
            side=request.side,
            quantity=request.quantity,
            limit_price=request.limit_price,
        )
        refused: ServiceError | None = None
        out: OrderOut | None = None
        async with self.sessionmaker.begin() as db:
            orders = OrderRepository(db)
            row = await orders.get(session_id, request.order_id)
            created = False
            if row is None:
                session = await session_row(SessionRepository(db), session_id, for_update=True)
                refused = await self._pre_trade_check(db, session, order)
                if refused is None:
                    row, created = await orders.insert_if_absent(session_id, order)
            if row is not None:
                if not created and not _same_order(row, order):
                    raise ConflictError(
                        f"order {request.order_id!r} was already placed with other values",
                        field="order_id",
                    )
                out = OrderOut.model_validate(row)
        # A refusal books nothing; its audit event committed with the transaction above.
        if refused is not None:
            raise refused
        assert out is not None  # booked, or known already
        out.duplicate = not created
        return out, created

    async def _pre_trade_check(
        self, db: AsyncSession, session: TradingSession, order: NewOrder
    ) -> ServiceError | None:
        """The gate, then every check of domain.risk.check_order; a refusal is audited and
        counted and comes back as the error to raise (nothing else is written)."""
        gate = gate_of(session)
        figures = await LedgerRepository(db).pnl(session.id)
        state = state_of(session, figures)
        facts = await RiskRepository(db).order_facts(session.id, order.symbol)
        refusal = check_order(
            order_limits_from(session.order_limits),
            OrderContext(
                state=state,
                held=facts.held,
                mark=facts.mark,
                open_orders=facts.open_orders,
                recent_order_times=facts.recent_order_times,
            ),
            side=order.side,
            quantity=order.quantity,
            limit_price=order.limit_price,
            now=facts.now,
        )
        if refusal is None:
            return None
        message = _REFUSALS[refusal]
        self.metrics.order_refusals.labels(refusal.value).inc()
        await AuditRepository(db).append(
            session_id=session.id,
            action="order.refused",
            actor="risk",
            reason=message,
            details={
                "order_id": order.order_id,
                "refusal": refusal.value,
                "trading_state": state.value,
                "symbol": order.symbol,
                "side": order.side,
                "quantity": format(order.quantity, "f"),
            },
            workflow_id=session.workflow_id,
            dedupe_key=f"{session.id}:order:{order.order_id}:refused:{refusal.value}",
        )
        if refusal is Refusal.HALTED:
            return GateClosedError(
                f"trading gate of session {session.id!r} is closed: {gate.reason}"
            )
        return OrderRefusedError(refusal, f"order {order.order_id!r} refused: {message}")

    async def list_orders(
        self, session_id: str, status: OrderStatus | None = None
    ) -> list[OrderOut]:
        """The session's orders, oldest first; 404 for an unknown session."""
        async with self.sessionmaker() as db:
            await session_row(SessionRepository(db), session_id)
            rows = await OrderRepository(db).list(session_id, status=status)
        return [OrderOut.model_validate(row) for row in rows]


_REFUSALS = {
    Refusal.HALTED: "the trading gate is closed",
    Refusal.REDUCING_ONLY: "the session is REDUCING: only orders that shrink the position pass",
    Refusal.MAX_QUANTITY: "quantity above the session's max_quantity",
    Refusal.MAX_NOTIONAL: "notional above the session's max_notional",
    Refusal.PRICE_COLLAR: "limit price outside the collar around the latest mark",
    Refusal.NO_REFERENCE_PRICE: "no mark of the symbol to check the order against",
    Refusal.ORDER_RATE: "more orders per second than the session's max_orders_per_second",
    Refusal.MAX_OPEN_ORDERS: "the session holds max_open_orders open orders already",
}


def _same_order(row: Order, order: NewOrder) -> bool:
    fields: tuple[tuple[object, object], ...] = (
        (row.symbol, order.symbol),
        (row.side, order.side),
        (row.quantity, order.quantity),
        (row.limit_price, order.limit_price),
    )
    return all(stored == asked for stored, asked in fields)
