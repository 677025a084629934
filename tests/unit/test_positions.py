"""Average-cost accounting: what each fill does to the position and to realized PnL."""

from decimal import Decimal

from domain.positions import Position, Side, apply_fill, unrealized_pnl

D = Decimal


def test_buy_from_flat_opens_long_at_fill_price() -> None:
    effect = apply_fill(Position(), Side.BUY, D(10), D(100))

    assert effect.position == Position(D(10), D(100))
    assert effect.realized_pnl == 0


def test_sell_from_flat_opens_short_with_negative_quantity() -> None:
    effect = apply_fill(Position(), Side.SELL, D(10), D(100))

    assert effect.position == Position(D(-10), D(100))
    assert effect.realized_pnl == 0


def test_adding_to_long_moves_average_price_and_realizes_nothing() -> None:
    # (10 * 100 + 30 * 104) / 40 = (1000 + 3120) / 40 = 103
    effect = apply_fill(Position(D(10), D(100)), Side.BUY, D(30), D(104))

    assert effect.position == Position(D(40), D(103))
    assert effect.realized_pnl == 0


def test_adding_to_short_moves_average_price_and_realizes_nothing() -> None:
    # (-10 * 100 + -30 * 96) / -40 = (-1000 - 2880) / -40 = 97
    effect = apply_fill(Position(D(-10), D(100)), Side.SELL, D(30), D(96))

    assert effect.position == Position(D(-40), D(97))
    assert effect.realized_pnl == 0


def test_partial_close_of_long_realizes_pnl_and_keeps_average() -> None:
    # sell 4 of 10 bought at 100, at 110: (110 - 100) * 4 = 40
    effect = apply_fill(Position(D(10), D(100)), Side.SELL, D(4), D(110))

    assert effect.position == Position(D(6), D(100))
    assert effect.realized_pnl == D(40)


def test_partial_close_of_long_at_a_loss_realizes_negative_pnl() -> None:
    # sell 4 of 10 bought at 100, at 75: (75 - 100) * 4 = -100
    effect = apply_fill(Position(D(10), D(100)), Side.SELL, D(4), D(75))

    assert effect.position == Position(D(6), D(100))
    assert effect.realized_pnl == D(-100)


def test_full_close_of_long_leaves_flat_position() -> None:
    # the README example: buy 10 at 100, sell 10 at 60 -> (60 - 100) * 10 = -400
    effect = apply_fill(Position(D(10), D(100)), Side.SELL, D(10), D(60))

    assert effect.position == Position()
    assert effect.position.quantity == 0
    assert effect.position.average_price == 0
    assert effect.realized_pnl == D(-400)


def test_flip_long_to_short_closes_long_and_opens_remainder_at_fill_price() -> None:
    # long 10 at 100, sell 15 at 120: closes 10 -> (120 - 100) * 10 = 200; short 5 at 120
    effect = apply_fill(Position(D(10), D(100)), Side.SELL, D(15), D(120))

    assert effect.position == Position(D(-5), D(120))
    assert effect.realized_pnl == D(200)


def test_partial_cover_of_short_realizes_profit_when_price_fell() -> None:
    # short 10 at 100, buy 4 at 90: (90 - 100) * 4 * -1 = 40
    effect = apply_fill(Position(D(-10), D(100)), Side.BUY, D(4), D(90))

    assert effect.position == Position(D(-6), D(100))
    assert effect.realized_pnl == D(40)


def test_full_cover_of_short_at_higher_price_realizes_loss() -> None:
    # short 10 at 100, buy 10 at 130: (130 - 100) * 10 * -1 = -300
    effect = apply_fill(Position(D(-10), D(100)), Side.BUY, D(10), D(130))

    assert effect.position == Position()
    assert effect.realized_pnl == D(-300)


def test_flip_short_to_long_closes_short_and_opens_remainder_at_fill_price() -> None:
    # short 10 at 100, buy 25 at 80: closes 10 -> (80 - 100) * 10 * -1 = 200; long 15 at 80
    effect = apply_fill(Position(D(-10), D(100)), Side.BUY, D(25), D(80))

    assert effect.position == Position(D(15), D(80))
    assert effect.realized_pnl == D(200)


def test_fee_on_opening_fill_is_a_realized_cost() -> None:
    effect = apply_fill(Position(), Side.BUY, D(10), D(100), fee=D("1.25"))

    assert effect.position == Position(D(10), D(100))
    assert effect.realized_pnl == D("-1.25")


def test_fee_reduces_realized_profit_on_close() -> None:
    # (110 - 100) * 10 - 3 = 97
    effect = apply_fill(Position(D(10), D(100)), Side.SELL, D(10), D(110), fee=D(3))

    assert effect.realized_pnl == D(97)


def test_fee_deepens_realized_loss_on_close() -> None:
    # (90 - 100) * 10 - 3 = -103
    effect = apply_fill(Position(D(10), D(100)), Side.SELL, D(10), D(90), fee=D(3))

    assert effect.realized_pnl == D(-103)


def test_fee_on_flip_is_charged_once() -> None:
    # long 10 at 100, sell 15 at 120 with fee 2: 200 - 2 = 198
    effect = apply_fill(Position(D(10), D(100)), Side.SELL, D(15), D(120), fee=D(2))

    assert effect.position == Position(D(-5), D(120))
    assert effect.realized_pnl == D(198)


def test_fractional_quantities_and_prices_stay_exact() -> None:
    # (0.3 * 0.1 + 0.7 * 0.2) / 1.0 = (0.03 + 0.14) / 1.0 = 0.17 ; exact in Decimal
    effect = apply_fill(Position(D("0.3"), D("0.1")), Side.BUY, D("0.7"), D("0.2"))

    assert effect.position == Position(D("1.0"), D("0.17"))


def test_unrealized_pnl_without_mark_is_zero() -> None:
    assert unrealized_pnl(Position(D(10), D(100)), None) == 0


def test_unrealized_pnl_of_flat_position_is_zero_even_with_mark() -> None:
    assert unrealized_pnl(Position(), D(123)) == 0


def test_unrealized_pnl_of_long_gains_when_mark_rises() -> None:
    # (105 - 100) * 10 = 50
    assert unrealized_pnl(Position(D(10), D(100)), D(105)) == D(50)


def test_unrealized_pnl_of_long_loses_when_mark_falls() -> None:
    # (70 - 100) * 10 = -300
    assert unrealized_pnl(Position(D(10), D(100)), D(70)) == D(-300)


def test_unrealized_pnl_of_short_loses_when_mark_rises() -> None:
    # (110 - 100) * -10 = -100
    assert unrealized_pnl(Position(D(-10), D(100)), D(110)) == D(-100)


def test_unrealized_pnl_of_short_gains_when_mark_falls() -> None:
    # (92 - 100) * -10 = 80
    assert unrealized_pnl(Position(D(-10), D(100)), D(92)) == D(80)
