"""Risk rules with hand-computed numbers: trading states, drawdown, profit target, orders."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.positions import Side
from domain.risk import (
    OrderContext,
    OrderLimits,
    Refusal,
    TradingState,
    check_order,
    drawdown,
    drawdown_used,
    profit_target_reached,
    reduces_position,
    trading_state,
)

D = Decimal
NOW = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


def context(
    state: TradingState = TradingState.ACTIVE,
    held: str = "0",
    mark: str | None = "100",
    open_orders: int = 0,
    recent: tuple[datetime, ...] = (),
) -> OrderContext:
    return OrderContext(state, D(held), None if mark is None else D(mark), open_orders, recent)


def test_a_session_reduces_from_its_share_of_the_loss_limit() -> None:
    # limit 1000, reducing at 90 %: 899.99 trades freely, 900 only reduces
    assert trading_state(halted=False, loss=D("899.99"), loss_limit=D(1000), reducing_at=0.9) is (
        TradingState.ACTIVE
    )
    assert trading_state(halted=False, loss=D(900), loss_limit=D(1000), reducing_at=0.9) is (
        TradingState.REDUCING
    )


def test_halted_wins_and_no_share_means_never_reducing() -> None:
    assert trading_state(halted=True, loss=D(0), loss_limit=D(1000), reducing_at=0.9) is (
        TradingState.HALTED
    )
    assert trading_state(halted=False, loss=D(999), loss_limit=D(1000), reducing_at=None) is (
        TradingState.ACTIVE
    )


@pytest.mark.parametrize(
    ("held", "side", "quantity", "reduces"),
    [
        ("10", Side.SELL, "4", True),  # long 10, sell 4: smaller
        ("10", Side.SELL, "10", True),  # to flat
        ("10", Side.SELL, "11", False),  # through zero: opens a short
        ("10", Side.BUY, "1", False),  # adds
        ("-5", Side.BUY, "5", True),  # short 5, buy 5: flat
        ("0", Side.SELL, "1", False),  # flat: anything opens
    ],
)
def test_only_an_opposite_order_no_larger_than_the_position_reduces_it(
    held: str, side: Side, quantity: str, reduces: bool
) -> None:
    assert reduces_position(D(held), side, D(quantity)) is reduces


def test_drawdown_is_measured_from_the_running_peak_of_equity() -> None:
    # equity rose to +300, now -50: drawdown 350, 70 % of a 500 limit
    assert drawdown(D(300), D(-50)) == D(350)
    assert drawdown_used(D(300), D(-50), D(500)) == pytest.approx(0.7)
    # the peak starts at 0: a session that only lost has drawn down its loss
    assert drawdown(D(-20), D(-80)) == D(80)
    assert drawdown(D(300), D(400)) == D(0)


def test_a_profit_target_is_reached_at_or_above_it() -> None:
    assert profit_target_reached(D(250), D(250))
    assert not profit_target_reached(D("249.99"), D(250))
    assert not profit_target_reached(D(10_000), None)


def test_a_reducing_session_refuses_an_order_that_adds() -> None:
    refused = check_order(
        OrderLimits(),
        context(TradingState.REDUCING, held="10"),
        side=Side.BUY,
        quantity=D(1),
        limit_price=None,
        now=NOW,
    )
    allowed = check_order(
        OrderLimits(),
        context(TradingState.REDUCING, held="10"),
        side=Side.SELL,
        quantity=D(5),
        limit_price=None,
        now=NOW,
    )

    assert (refused, allowed) == (Refusal.REDUCING_ONLY, None)


def test_a_halted_session_refuses_every_order() -> None:
    refusal = check_order(
        OrderLimits(),
        context(TradingState.HALTED, held="10"),
        side=Side.SELL,
        quantity=D(1),
        limit_price=None,
        now=NOW,
    )
    assert refusal is Refusal.HALTED


@pytest.mark.parametrize(
    ("limits", "quantity", "limit_price", "refusal"),
    [
        (OrderLimits(max_quantity=D(100)), "101", None, Refusal.MAX_QUANTITY),
        (OrderLimits(max_quantity=D(100)), "100", None, None),
        # 60 x 100 (the mark) = 6000 > 5000
        (OrderLimits(max_notional=D(5000)), "60", None, Refusal.MAX_NOTIONAL),
        # 50 x 99 = 4950 <= 5000 at its own limit price
        (OrderLimits(max_notional=D(5000)), "50", "99", None),
        # collar 5 % of the mark 100: 94.99 and 105.01 are out, 95 and 105 in
        (OrderLimits(price_collar_pct=D(5)), "1", "94.99", Refusal.PRICE_COLLAR),
        (OrderLimits(price_collar_pct=D(5)), "1", "105.01", Refusal.PRICE_COLLAR),
        (OrderLimits(price_collar_pct=D(5)), "1", "95", None),
        (OrderLimits(price_collar_pct=D(5)), "1", "105", None),
    ],
)
def test_pre_trade_limits_on_size_notional_and_price(
    limits: OrderLimits, quantity: str, limit_price: str | None, refusal: Refusal | None
) -> None:
    price = None if limit_price is None else D(limit_price)
    result = check_order(
        limits, context(), side=Side.BUY, quantity=D(quantity), limit_price=price, now=NOW
    )
    assert result is refusal


def test_notional_and_collar_need_a_reference_price() -> None:
    no_mark = context(mark=None)
    assert (
        check_order(
            OrderLimits(max_notional=D(5000)),
            no_mark,
            side=Side.BUY,
            quantity=D(1),
            limit_price=None,
            now=NOW,
        )
        is Refusal.NO_REFERENCE_PRICE
    )
    assert (
        check_order(
            OrderLimits(price_collar_pct=D(5)),
            no_mark,
            side=Side.BUY,
            quantity=D(1),
            limit_price=D(100),
            now=NOW,
        )
        is Refusal.NO_REFERENCE_PRICE
    )


def test_the_order_rate_counts_the_last_second_only() -> None:
    limits = OrderLimits(max_orders_per_second=2)
    two_recent = (NOW - timedelta(milliseconds=900), NOW - timedelta(milliseconds=100))
    one_recent = (NOW - timedelta(seconds=1), NOW - timedelta(milliseconds=100))

    throttled = check_order(
        limits, context(recent=two_recent), side=Side.BUY, quantity=D(1), limit_price=None, now=NOW
    )
    passed = check_order(
        limits, context(recent=one_recent), side=Side.BUY, quantity=D(1), limit_price=None, now=NOW
    )

    assert (throttled, passed) == (Refusal.ORDER_RATE, None)


def test_open_orders_are_capped() -> None:
    limits = OrderLimits(max_open_orders=3)
    assert (
        check_order(
            limits, context(open_orders=3), side=Side.BUY, quantity=D(1), limit_price=None, now=NOW
        )
        is Refusal.MAX_OPEN_ORDERS
    )
    assert (
        check_order(
            limits, context(open_orders=2), side=Side.BUY, quantity=D(1), limit_price=None, now=NOW
        )
        is None
    )


# --- issue 16: wake rules, stored limits, kill scopes, end reasons ----------------------


def test_a_loss_past_reducing_at_wakes_the_workflow_until_it_publishes_reducing() -> None:
    from domain.sweep import WakeReason, wake_reason

    args: tuple[Decimal, Decimal, list[float], list[float], float] = (
        Decimal(600),
        Decimal(1000),
        [0.8],
        [],
        60.0,
    )

    assert wake_reason(*args, reducing_at=0.5, published_state="ACTIVE") is WakeReason.STATE
    assert wake_reason(*args, reducing_at=0.5, published_state="REDUCING") is None
    assert wake_reason(*args) is None


def test_drawdown_at_its_limit_or_a_reached_target_wakes_as_a_limit() -> None:
    from domain.sweep import RiskFigures, WakeReason, wake_reason

    quiet: tuple[Decimal, Decimal, list[float], list[float], float] = (
        Decimal(0),
        Decimal(1000),
        [0.8],
        [],
        0.0,
    )
    fallen = RiskFigures(equity=Decimal(90), peak_equity=Decimal(200), max_drawdown=Decimal(100))
    near = RiskFigures(equity=Decimal(115), peak_equity=Decimal(200), max_drawdown=Decimal(100))
    warned = RiskFigures(
        equity=Decimal(115),
        peak_equity=Decimal(200),
        max_drawdown=Decimal(100),
        drawdown_warned=(0.8,),
    )
    target = RiskFigures(equity=Decimal(50), peak_equity=Decimal(50), profit_target=Decimal(50))

    assert wake_reason(*quiet, risk=fallen) is WakeReason.LIMIT  # 110 below the peak
    assert wake_reason(*quiet, risk=near) is WakeReason.WARNING  # 85 % of 100
    assert wake_reason(*quiet, risk=warned) is None
    assert wake_reason(*quiet, risk=target) is WakeReason.LIMIT


def test_session_order_limits_override_the_defaults_one_by_one() -> None:
    from domain.risk import merge_order_limits, order_limits_dict

    defaults = OrderLimits(max_quantity=Decimal(100), max_open_orders=10)

    merged = merge_order_limits({"max_quantity": "5", "price_collar_pct": None}, defaults)

    assert order_limits_dict(merged) == {"max_quantity": "5", "max_open_orders": "10"}


def test_a_kill_scope_covers_its_account_its_algorithm_or_everything() -> None:
    from domain.kill_switch import KillScope, ScopeKind

    account = KillScope(kind=ScopeKind.ACCOUNT, value="A")
    algorithm = KillScope(kind=ScopeKind.ALGORITHM, value="X")

    assert (account.covers("A", "Y"), account.covers("B", "A")) == (True, False)
    assert (algorithm.covers("B", "X"), algorithm.covers("X", "Y")) == (True, False)
    assert KillScope(kind=ScopeKind.ALL).covers("any", "thing")


def test_risk_end_reasons_leave_a_terminal_status() -> None:
    from domain.status import EndReason, SessionStatus

    assert EndReason.DRAWDOWN_LIMIT.final_status is SessionStatus.LOSS_LIMIT
    assert EndReason.ACCOUNT_LOSS_LIMIT.final_status is SessionStatus.LOSS_LIMIT
    assert EndReason.PROFIT_TARGET.final_status is SessionStatus.TERMINATED
