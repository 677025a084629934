"""Delivery rules and the SSE cursor, with hand-computed values."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.notifications import (
    DELIVERY_MAX_ATTEMPTS,
    DeliveryOutcome,
    NotificationEvent,
    StreamCursor,
    classify_status,
    delivery_id,
    notification_workflow_id,
    retry_delay,
)

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def event(notification_id: int, seconds: int = 0) -> NotificationEvent:
    return NotificationEvent(
        id=notification_id,
        kind="warning.loss",
        session_id="s-1",
        account_id="acc-1",
        created_at=T0 + timedelta(seconds=seconds),
        payload={"used": 0.8},
    )


@pytest.mark.parametrize(
    ("status_code", "outcome"),
    [
        (200, DeliveryOutcome.DELIVERED),
        (202, DeliveryOutcome.DELIVERED),
        (204, DeliveryOutcome.DELIVERED),
        (301, DeliveryOutcome.RETRY),
        (400, DeliveryOutcome.REJECTED),
        (401, DeliveryOutcome.REJECTED),
        (404, DeliveryOutcome.REJECTED),
        (408, DeliveryOutcome.RETRY),
        (410, DeliveryOutcome.REJECTED),
        (429, DeliveryOutcome.RETRY),
        (500, DeliveryOutcome.RETRY),
        (503, DeliveryOutcome.RETRY),
    ],
)
def test_status_codes_decide_delivered_retry_or_rejected(
    status_code: int, outcome: DeliveryOutcome
) -> None:
    assert classify_status(status_code) is outcome


def test_retry_delays_double_from_one_second_and_stop_at_five_minutes() -> None:
    delays = [retry_delay(attempt).total_seconds() for attempt in range(1, DELIVERY_MAX_ATTEMPTS)]
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    # An operator hears of a dead receiver within about 20 minutes.
    assert sum(delays) == 1111


def test_ids_name_the_notification_and_the_subscription() -> None:
    assert notification_workflow_id(42) == "notification-42"
    assert delivery_id(42, 7) == "42:7"


def test_event_body_is_the_json_receivers_parse() -> None:
    body = event(5).body()
    assert NotificationEvent.model_validate_json(body) == event(5)


def test_cursor_sends_each_event_once_in_id_order() -> None:
    cursor = StreamCursor(floor=10)
    assert [e.id for e in cursor.take([event(12), event(11)])] == [11, 12]
    assert cursor.take([event(11), event(12)]) == []
    assert cursor.last_id == 12


def test_cursor_never_sends_what_the_client_already_had() -> None:
    cursor = StreamCursor(floor=10)
    assert [e.id for e in cursor.take([event(9), event(10), event(11)])] == [11]


def test_cursor_sends_a_late_commit_below_the_last_id() -> None:
    cursor = StreamCursor(floor=0)
    cursor.take([event(2)])
    assert [e.id for e in cursor.take([event(1), event(2)])] == [1]
    assert cursor.last_id == 2
    assert cursor.recently_sent == [1, 2]


def test_cursor_forgets_sent_ids_the_lookback_can_no_longer_return() -> None:
    cursor = StreamCursor(floor=0)
    cursor.take([event(1, seconds=0), event(2, seconds=40)])
    cursor.forget_before(T0 + timedelta(seconds=30))
    assert cursor.recently_sent == [2]
    assert cursor.last_id == 2
