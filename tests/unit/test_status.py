"""The session lifecycle table: which status changes are legal and which are refused."""

import pytest

from domain.status import (
    TERMINAL_STATUSES,
    EndReason,
    IllegalTransitionError,
    SessionStatus,
    can_transition,
    check_transition,
    is_terminal,
)

S = SessionStatus

LEGAL = [
    (S.PENDING, S.ACTIVE),
    (S.PENDING, S.ENDING),
    (S.ACTIVE, S.ENDING),
    (S.ENDING, S.EXPIRED),
    (S.ENDING, S.LOSS_LIMIT),
    (S.ENDING, S.TERMINATED),
    (S.ENDING, S.CLEANUP_FAILED),
    (S.CLEANUP_FAILED, S.ENDING),
    (S.CLEANUP_FAILED, S.EXPIRED),
    (S.CLEANUP_FAILED, S.LOSS_LIMIT),
    (S.CLEANUP_FAILED, S.TERMINATED),
]

ILLEGAL = [
    (S.ACTIVE, S.PENDING),
    (S.ENDING, S.ACTIVE),
    (S.ENDING, S.PENDING),
    (S.CLEANUP_FAILED, S.ACTIVE),
    # a session must pass through ENDING (its clean-up) before it can end
    (S.PENDING, S.EXPIRED),
    (S.PENDING, S.TERMINATED),
    (S.ACTIVE, S.EXPIRED),
    (S.ACTIVE, S.LOSS_LIMIT),
    (S.ACTIVE, S.TERMINATED),
    (S.ACTIVE, S.CLEANUP_FAILED),
]


@pytest.mark.parametrize(("current", "target"), LEGAL)
def test_legal_step_is_allowed(current: SessionStatus, target: SessionStatus) -> None:
    assert can_transition(current, target)
    check_transition(current, target)


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_illegal_step_raises(current: SessionStatus, target: SessionStatus) -> None:
    assert not can_transition(current, target)
    with pytest.raises(IllegalTransitionError, match=f"from {current} to {target}"):
        check_transition(current, target)


WAYS_OUT_OF_TERMINAL = [
    (terminal, target)
    for terminal in sorted(TERMINAL_STATUSES)
    for target in SessionStatus
    if target != terminal
]


@pytest.mark.parametrize(("terminal", "target"), WAYS_OUT_OF_TERMINAL)
def test_terminal_status_has_no_way_out(terminal: SessionStatus, target: SessionStatus) -> None:
    assert not can_transition(terminal, target)
    with pytest.raises(IllegalTransitionError):
        check_transition(terminal, target)


@pytest.mark.parametrize("status", list(SessionStatus))
def test_staying_put_is_legal_for_every_status(status: SessionStatus) -> None:
    assert can_transition(status, status)
    check_transition(status, status)


def test_exactly_expired_loss_limit_and_terminated_are_terminal() -> None:
    assert {s for s in SessionStatus if is_terminal(s)} == {S.EXPIRED, S.LOSS_LIMIT, S.TERMINATED}


def test_every_status_is_reachable_from_pending() -> None:
    reached = {S.PENDING}
    frontier = [S.PENDING]
    while frontier:
        current = frontier.pop()
        for target in SessionStatus:
            if target not in reached and can_transition(current, target):
                reached.add(target)
                frontier.append(target)

    assert reached == set(SessionStatus)


def test_illegal_transition_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="cannot go from"):
        check_transition(S.EXPIRED, S.ACTIVE)


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (EndReason.EXPIRED, S.EXPIRED),
        (EndReason.LOSS_LIMIT, S.LOSS_LIMIT),
        (EndReason.TERMINATED, S.TERMINATED),
    ],
)
def test_end_reason_maps_to_its_terminal_status(reason: EndReason, status: SessionStatus) -> None:
    assert reason.final_status is status
    assert is_terminal(reason.final_status)
