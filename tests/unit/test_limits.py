"""Loss and time arithmetic and the verdict of a check, with hand-computed numbers."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.limits import (
    Verdict,
    crossed_thresholds,
    due_time_warnings,
    judge,
    loss_used,
    next_time_warning_at,
    session_loss,
    time_until_wake,
    time_used,
)
from domain.sweep import loss_used_pct, wake_reason

D = Decimal
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def test_profitable_session_has_zero_loss() -> None:
    assert session_loss(D(250), D(50)) == 0


def test_flat_session_has_zero_loss() -> None:
    assert session_loss(D(0), D(0)) == 0


def test_loss_is_negative_total_of_realized_and_unrealized() -> None:
    # realized -400, unrealized -150: loss = 550
    assert session_loss(D(-400), D(-150)) == D(550)


def test_unrealized_gain_offsets_realized_loss() -> None:
    # realized -400, unrealized +150: total -250, loss = 250
    assert session_loss(D(-400), D(150)) == D(250)


def test_realized_gain_covering_unrealized_loss_is_zero_loss() -> None:
    # realized +300, unrealized -200: total +100, nothing lost
    assert session_loss(D(300), D(-200)) == 0


def test_loss_used_is_fraction_of_limit() -> None:
    # 400 / 500 = 0.8
    assert loss_used(D(400), D(500)) == pytest.approx(0.8)


def test_loss_used_is_one_at_limit_and_above_one_past_it() -> None:
    assert loss_used(D(500), D(500)) == 1.0
    # 750 / 500 = 1.5
    assert loss_used(D(750), D(500)) == pytest.approx(1.5)


def test_loss_used_is_zero_without_loss() -> None:
    assert loss_used(D(0), D(500)) == 0.0


def test_time_used_is_fraction_of_session_elapsed() -> None:
    # 15 of 60 minutes = 0.25
    assert time_used(START + timedelta(minutes=15), START, END) == pytest.approx(0.25)


def test_time_used_before_start_is_clamped_to_zero() -> None:
    assert time_used(START - timedelta(minutes=5), START, END) == 0.0


def test_time_used_after_end_is_clamped_to_one() -> None:
    assert time_used(END + timedelta(hours=3), START, END) == 1.0


def test_time_used_at_deadline_is_exactly_one() -> None:
    assert time_used(END, START, END) == 1.0


def test_time_used_of_empty_session_is_one() -> None:
    assert time_used(START, START, START) == 1.0


def test_judge_continues_before_deadline_and_below_limit() -> None:
    assert judge(START, END, D(499), D(500)) is Verdict.CONTINUE


def test_judge_loss_equal_to_limit_is_a_breach() -> None:
    assert judge(START, END, D(500), D(500)) is Verdict.LOSS_LIMIT


def test_judge_loss_just_below_limit_is_not_a_breach() -> None:
    assert judge(START, END, D("499.99999999"), D(500)) is Verdict.CONTINUE


def test_judge_expires_exactly_at_deadline() -> None:
    assert judge(END, END, D(0), D(500)) is Verdict.EXPIRED


def test_judge_one_microsecond_before_deadline_continues() -> None:
    assert judge(END - timedelta(microseconds=1), END, D(0), D(500)) is Verdict.CONTINUE


def test_judge_breach_outranks_expiry() -> None:
    assert judge(END + timedelta(minutes=1), END, D(600), D(500)) is Verdict.LOSS_LIMIT


def test_wake_for_the_check_when_it_comes_before_the_deadline() -> None:
    now = START
    check_due = START + timedelta(seconds=30)

    assert time_until_wake(now, END, check_due) == timedelta(seconds=30)


def test_wake_at_the_deadline_when_it_comes_before_the_next_check() -> None:
    # 20 s before the end, next check in 30 s: sleep only 20 s
    now = END - timedelta(seconds=20)
    check_due = now + timedelta(seconds=30)

    assert time_until_wake(now, END, check_due) == timedelta(seconds=20)


def test_wake_is_never_negative_when_check_is_overdue() -> None:
    now = START + timedelta(minutes=10)
    check_due = START + timedelta(minutes=9)

    assert time_until_wake(now, END, check_due) == timedelta(0)


def test_wake_is_never_negative_after_deadline() -> None:
    now = END + timedelta(minutes=5)

    assert time_until_wake(now, END, now + timedelta(seconds=30)) == timedelta(0)


def test_crossed_thresholds_reports_reached_thresholds() -> None:
    assert crossed_thresholds(0.85, [0.5, 0.8, 0.9], []) == [0.5, 0.8]


def test_crossed_thresholds_skips_already_warned() -> None:
    assert crossed_thresholds(0.95, [0.5, 0.8, 0.9], [0.5, 0.8]) == [0.9]


def test_crossed_thresholds_is_empty_when_all_warned() -> None:
    assert crossed_thresholds(1.0, [0.5, 0.8], [0.5, 0.8]) == []


def test_crossed_thresholds_returns_ascending_order_whatever_the_input_order() -> None:
    assert crossed_thresholds(1.2, [0.9, 0.5, 0.8], []) == [0.5, 0.8, 0.9]


def test_crossed_thresholds_includes_threshold_reached_exactly() -> None:
    assert crossed_thresholds(0.8, [0.8], []) == [0.8]


def test_crossed_thresholds_ignores_thresholds_not_yet_reached() -> None:
    assert crossed_thresholds(0.79, [0.8, 0.9], []) == []


def test_wake_ignores_instants_that_are_not_due_at_all() -> None:
    # no warning pending (None): the check in 30 s decides
    now = START

    assert time_until_wake(now, END, now + timedelta(seconds=30), None) == timedelta(seconds=30)


@pytest.mark.parametrize(
    ("loss", "thresholds", "wake"),
    [
        ("799.99", [0.8], False),
        ("800", [0.8], True),
        ("500", [0.9, 0.5], True),  # the first threshold counts, not the list's order
        ("999", [], False),  # no warnings: only the limit wakes
        ("1000", [], True),
        ("0", [0.8], False),
    ],
)
def test_a_fill_or_mark_wakes_the_workflow_from_the_first_warning_threshold(
    loss: str, thresholds: list[float], wake: bool
) -> None:
    # LossUsedPct as published already: only a threshold or the limit can wake it here.
    published = loss_used_pct(D(loss), D(1000))
    assert (wake_reason(D(loss), D(1000), thresholds, [], published) is not None) is wake


def test_a_time_warning_is_due_at_its_very_instant_though_the_fraction_rounds_below() -> None:
    # 1000.000001 s at 33 %: the instant is 09:05:30 (timedelta rounds to the microsecond),
    # where the fraction of time used comes out as 0.32999999967, a hair below 0.33. A
    # workflow woken then must find the warning due, or it would wake again at once, forever.
    end = START + timedelta(seconds=1000, microseconds=1)
    instant = next_time_warning_at(START, end, [0.33], [])
    assert instant == START + timedelta(minutes=5, seconds=30)
    assert time_used(instant, START, end) < 0.33

    assert due_time_warnings(instant, START, end, [0.33], []) == [0.33]
    assert time_until_wake(instant, end, instant) == timedelta(0)


def test_time_warnings_due_are_the_unsent_ones_whose_instant_has_come() -> None:
    now = START + timedelta(minutes=50)  # 83 % of the hour

    assert due_time_warnings(now, START, END, [0.5, 0.8, 0.9], [0.5]) == [0.8]
    assert due_time_warnings(now, START, END, [0.8], [0.8]) == []
