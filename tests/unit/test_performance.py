"""Performance figures of a session from its fills, with hand-computed numbers."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.performance import (
    FillRecord,
    SnapshotKind,
    compute_performance,
    peak_and_drawdown,
    round_trips,
    snapshot_key,
)
from domain.positions import Position, Side, apply_fill, unrealized_pnl

D = Decimal
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def fill(
    side: Side, quantity: str, price: str, realized: str, fee: str = "0", symbol: str = "ACME"
) -> FillRecord:
    return FillRecord(
        symbol=symbol,
        side=side,
        quantity=D(quantity),
        price=D(price),
        fee=D(fee),
        executed_at=START,
        realized_pnl=D(realized),
    )


BUY, SELL = Side.BUY, Side.SELL

# Two round trips on ACME, then a short left open. Realized per fill, fee included:
#   1 BUY  10 @ 100 fee 1 -> -1                      cumulative  -1  peak  0  drawdown   1
#   2 SELL 10 @ 110 fee 1 -> (110-100)*10 - 1 =  99  cumulative  98  peak 98  (trip 1: +98)
#   3 BUY   5 @ 110 fee 1 -> -1                      cumulative  97  peak 98  drawdown   1
#   4 SELL  5 @  90 fee 1 -> (90-110)*5 - 1 = -101   cumulative  -4  peak 98  drawdown 102
#                                                    (trip 2: -1 - 101 = -102)
#   5 SELL  4 @  90 fee 0 -> 0 (opens a short)       cumulative  -4
SESSION_FILLS = [
    fill(BUY, "10", "100", "-1", fee="1"),
    fill(SELL, "10", "110", "99", fee="1"),
    fill(BUY, "5", "110", "-1", fee="1"),
    fill(SELL, "5", "90", "-101", fee="1"),
    fill(SELL, "4", "90", "0"),
]


def test_hand_computed_realized_values_match_the_ledger_arithmetic() -> None:
    position, booked = Position(), []
    for record in SESSION_FILLS:
        effect = apply_fill(position, record.side, record.quantity, record.price, record.fee)
        position = effect.position
        booked.append(effect.realized_pnl)

    assert booked == [record.realized_pnl for record in SESSION_FILLS]
    assert position == Position(D(-4), D(90))


def test_figures_of_a_session_with_two_round_trips_and_an_open_short() -> None:
    # The short 4 @ 90 marked at 95: unrealized (95 - 90) * -4 = -20.
    figures = compute_performance(
        SESSION_FILLS,
        unrealized_pnl=D(-20),
        loss_limit=D(100),
        start_time=START,
        end_time=END,
        now=START + timedelta(minutes=15),
    )

    # realized -1 + 99 - 1 - 101 + 0 = -4; total -4 - 20 = -24; loss 24 of 100 = 24 %
    assert figures.realized_pnl == D(-4)
    assert figures.unrealized_pnl == D(-20)
    assert figures.total_pnl == D(-24)
    assert figures.fees == D(4)
    assert figures.fills == 5
    # trip 1 +98 wins, trip 2 -102 loses; the open short is no round trip yet
    assert (figures.round_trips, figures.winning_round_trips) == (2, 1)
    assert figures.win_rate == 0.5
    assert figures.peak_pnl == D(98)
    assert figures.max_drawdown == D(102)
    assert figures.loss == D(24)
    assert figures.loss_used_pct == 24.0
    # 15 of 60 minutes
    assert figures.duration_seconds == 900.0
    assert figures.time_used_pct == 25.0


def test_session_without_fills_has_no_win_rate_and_zero_figures() -> None:
    figures = compute_performance(
        [], unrealized_pnl=D(0), loss_limit=D(500), start_time=START, end_time=END, now=START
    )

    assert figures.fills == figures.round_trips == 0
    assert figures.win_rate is None
    assert figures.realized_pnl == figures.peak_pnl == figures.max_drawdown == D(0)
    assert (figures.loss_used_pct, figures.time_used_pct, figures.duration_seconds) == (0, 0, 0)


def test_profit_with_unrealized_loss_uses_no_loss_limit() -> None:
    # BUY 10 @ 100, SELL 10 @ 130 -> +300 realized; an open position marked -200 below cost
    fills = [fill(BUY, "10", "100", "0"), fill(SELL, "10", "130", "300")]

    figures = compute_performance(
        fills, unrealized_pnl=D(-200), loss_limit=D(500), start_time=START, end_time=END, now=END
    )

    # total +100: nothing lost
    assert figures.loss == D(0)
    assert figures.loss_used_pct == 0.0
    assert figures.win_rate == 1.0


def test_loss_past_the_limit_reads_above_one_hundred_percent() -> None:
    # BUY 10 @ 100, SELL 10 @ 40 -> -600 realized against a 500 limit = 120 %
    fills = [fill(BUY, "10", "100", "0"), fill(SELL, "10", "40", "-600")]

    figures = compute_performance(
        fills, unrealized_pnl=D(0), loss_limit=D(500), start_time=START, end_time=END, now=END
    )

    assert figures.loss_used_pct == 120.0
    assert figures.win_rate == 0.0
    # never above zero: peak stays 0, drawdown is the whole loss
    assert (figures.peak_pnl, figures.max_drawdown) == (D(0), D(600))


def test_duration_stops_at_the_deadline_and_never_runs_negative() -> None:
    late = compute_performance(
        [],
        unrealized_pnl=D(0),
        loss_limit=D(1),
        start_time=START,
        end_time=END,
        now=END + timedelta(hours=3),
    )
    early = compute_performance(
        [],
        unrealized_pnl=D(0),
        loss_limit=D(1),
        start_time=START,
        end_time=END,
        now=START - timedelta(minutes=5),
    )

    assert (late.duration_seconds, late.time_used_pct) == (3600.0, 100.0)
    assert (early.duration_seconds, early.time_used_pct) == (0.0, 0.0)


def test_fill_crossing_through_zero_closes_one_round_trip_and_opens_the_next() -> None:
    # BUY 10 @ 100; SELL 15 @ 104 closes 10 for (104-100)*10 = +40 and opens short 5 @ 104;
    # BUY 5 @ 106 covers it: (104-106)*5 = -10. Trips: +40 (win), -10 (loss).
    fills = [
        fill(BUY, "10", "100", "0"),
        fill(SELL, "15", "104", "40"),
        fill(BUY, "5", "106", "-10"),
    ]

    trips = round_trips(fills)

    assert (trips.count, trips.wins) == (2, 1)


def test_crossing_fill_fee_counts_against_the_trip_it_closes() -> None:
    # BUY 10 @ 100; SELL 15 @ 100.1 fee 2: closes 10 for +1, minus the 2 fee = -1 (a loss);
    # BUY 5 @ 90 covers the short 5 @ 100.1: +50.5 (a win)
    fills = [
        fill(BUY, "10", "100", "0"),
        fill(SELL, "15", "100.1", "-1", fee="2"),
        fill(BUY, "5", "90", "50.5"),
    ]

    trips = round_trips(fills)

    assert (trips.count, trips.wins) == (2, 1)


def test_round_trips_are_tracked_per_symbol_when_fills_interleave() -> None:
    # ACME: +10 then flat (+30). XYZ: +5 and still open at the end. ZED: -2 then flat (-4).
    fills = [
        fill(BUY, "10", "100", "0", symbol="ACME"),
        fill(BUY, "5", "20", "0", symbol="XYZ"),
        fill(SELL, "2", "50", "0", symbol="ZED"),
        fill(SELL, "10", "103", "30", symbol="ACME"),
        fill(BUY, "2", "52", "-4", symbol="ZED"),
    ]

    trips = round_trips(fills)

    # two closed trips (ACME win, ZED loss); XYZ is still open
    assert (trips.count, trips.wins) == (2, 1)


def test_break_even_round_trip_is_not_a_win() -> None:
    fills = [fill(BUY, "1", "100", "0"), fill(SELL, "1", "100", "0")]

    assert round_trips(fills).wins == 0


def test_scaling_in_and_out_is_one_round_trip() -> None:
    # BUY 5, BUY 5 (long 10), SELL 3, SELL 7: flat once -> one trip of +6 + 14 = +20
    fills = [
        fill(BUY, "5", "100", "0"),
        fill(BUY, "5", "100", "0"),
        fill(SELL, "3", "102", "6"),
        fill(SELL, "7", "102", "14"),
    ]

    assert round_trips(fills).count == 1


def test_drawdown_is_the_largest_drop_from_a_running_peak_not_from_the_last_one() -> None:
    # cumulative: 50, 20 (drop 30), 120 (new peak), 70 (drop 50), 100
    fills = [
        fill(SELL, "1", "1", "50"),
        fill(SELL, "1", "1", "-30"),
        fill(SELL, "1", "1", "100"),
        fill(SELL, "1", "1", "-50"),
        fill(SELL, "1", "1", "30"),
    ]

    assert peak_and_drawdown(fills) == (D(120), D(50))


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (SnapshotKind.FINAL, "s-1:final"),
        (SnapshotKind.PERIODIC, "s-1:periodic:2025-01-06T09:00:00+00:00"),
    ],
)
def test_snapshot_key_is_one_final_per_session_and_one_periodic_per_instant(
    kind: SnapshotKind, expected: str
) -> None:
    assert snapshot_key("s-1", kind, START) == expected


def test_a_mark_that_gaps_through_the_limit_shows_the_true_loss_used_not_100() -> None:
    # Long 10 @ 100, marked at 5 against a 500 limit: loss 950 = 190 % (the case).
    # Clamping to 100 would hide from the desk how far past the limit the breach was caught.
    position = apply_fill(Position(), Side.BUY, D(10), D(100)).position

    figures = compute_performance(
        [fill(BUY, "10", "100", "0")],
        unrealized_pnl=unrealized_pnl(position, D(5)),
        loss_limit=D(500),
        start_time=START,
        end_time=END,
        now=END,
    )

    assert figures.loss == D(950)
    assert figures.loss_used_pct == 190.0


def test_money_figures_are_at_the_stored_scale() -> None:
    # A caller's unrealized PnL with 16 places (a product of two stored values) comes out at 8.
    figures = compute_performance(
        [fill(BUY, "3", "100.33333333", "-0.125", fee="0.125")],
        unrealized_pnl=D("-126.4499997912345678"),
        loss_limit=D(1000),
        start_time=START,
        end_time=END,
        now=END,
    )

    assert figures.unrealized_pnl == D("-126.44999979")
    assert figures.total_pnl == D("-126.57499979")
    assert figures.loss == D("126.57499979")
    for value in (figures.unrealized_pnl, figures.total_pnl, figures.loss, figures.fees):
        assert -value.as_tuple().exponent <= 8  # type: ignore[operator]
