"""Webhook delivery on the time-skipping server: real activities, PostgreSQL and HTTP receiver."""

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.notifications import NotificationActivities
from domain.notifications import (
    DELIVERY_MAX_ATTEMPTS,
    DeliverNotificationInput,
    DeliveryResult,
    notification_workflow_id,
)
from domain.session_messages import NotificationRef
from store.models import Alert, Notification, WebhookDelivery
from store.webhooks import WebhookRepository
from tests.fixtures.notification_data import (
    SECRET,
    deactivate,
    new_account,
    queue_notification,
    subscribe,
)
from tests.fixtures.webhook_receiver import webhook_receiver
from workflows.notifications import NotificationDeliveryWorkflow

Sessionmaker = async_sessionmaker[AsyncSession]


@pytest.fixture
async def subscriptions(sessionmaker: Sessionmaker) -> AsyncIterator[list[int]]:
    """Ids of the subscriptions a test creates; deactivated afterwards."""
    created: list[int] = []
    yield created
    await deactivate(sessionmaker, created)


async def deliver(
    env: WorkflowEnvironment, task_queue: str, notification_id: int
) -> DeliveryResult:
    return await env.client.execute_workflow(
        NotificationDeliveryWorkflow.run,
        DeliverNotificationInput(notification_id=notification_id),
        id=notification_workflow_id(notification_id),
        task_queue=task_queue,
    )


async def delivery_row(
    sessionmaker: Sessionmaker, notification_id: int, subscription_id: int
) -> WebhookDelivery:
    async with sessionmaker() as db:
        row = await db.get(WebhookDelivery, (notification_id, subscription_id))
    assert row is not None
    return row


async def delivered_at_set(sessionmaker: Sessionmaker, notification_id: int) -> bool:
    async with sessionmaker() as db:
        row = await db.get_one(Notification, notification_id)
    return row.delivered_at is not None


async def alerts(
    sessionmaker: Sessionmaker, notification_id: int, subscription_id: int
) -> list[Alert]:
    key = f"webhook:{notification_id}:{subscription_id}"
    async with sessionmaker() as db:
        return list((await db.execute(select(Alert).where(Alert.dedupe_key == key))).scalars())


async def test_warning_reaches_account_and_catch_all_subscribers_with_valid_signatures(
    time_env: WorkflowEnvironment,
    sessionmaker: Sessionmaker,
    task_queue: str,
    subscriptions: list[int],
) -> None:
    account = new_account()
    with webhook_receiver(SECRET) as mine, webhook_receiver(SECRET) as other:
        own = await subscribe(sessionmaker, mine.url, account)
        everyone = await subscribe(sessionmaker, mine.url, None)
        elsewhere = await subscribe(sessionmaker, other.url, new_account())
        subscriptions.extend([own, everyone, elsewhere])
        notification_id = await queue_notification(sessionmaker, account)

        result = await deliver(time_env, task_queue, notification_id)

    assert sorted(result.delivered) == [own, everyone]
    assert result.failed == []
    assert other.received == []
    assert sorted(r.delivery for r in mine.received) == [
        f"{notification_id}:{own}",
        f"{notification_id}:{everyone}",
    ]
    for request in mine.received:
        assert request.signature_valid
        assert request.event == "warning.loss"
        assert request.header("X-Trading-Timestamp").isdigit()
        assert request.json["id"] == notification_id
        assert request.json["account_id"] == account
        assert request.json["payload"]["threshold"] == 0.8
    row = await delivery_row(sessionmaker, notification_id, own)
    assert (row.attempts, row.last_error) == (1, None)
    assert row.delivered_at is not None
    assert await delivered_at_set(sessionmaker, notification_id)


async def test_receiver_failing_with_500_is_retried_until_it_accepts(
    time_env: WorkflowEnvironment,
    sessionmaker: Sessionmaker,
    task_queue: str,
    subscriptions: list[int],
) -> None:
    account = new_account()
    with webhook_receiver(SECRET, script=[500, 503, 500]) as receiver:
        subscription = await subscribe(sessionmaker, receiver.url, account)
        subscriptions.append(subscription)
        notification_id = await queue_notification(sessionmaker, account)

        result = await deliver(time_env, task_queue, notification_id)

    assert result.delivered == [subscription]
    assert len(receiver.received) == 4
    # Every attempt carries the same idempotency key, so the receiver can drop repeats.
    assert {r.delivery for r in receiver.received} == {f"{notification_id}:{subscription}"}
    assert all(r.signature_valid for r in receiver.received)
    row = await delivery_row(sessionmaker, notification_id, subscription)
    assert (row.attempts, row.last_error) == (4, None)
    assert row.delivered_at is not None
    assert await alerts(sessionmaker, notification_id, subscription) == []


async def test_delivery_that_exhausts_its_retries_raises_an_alert(
    time_env: WorkflowEnvironment,
    sessionmaker: Sessionmaker,
    task_queue: str,
    subscriptions: list[int],
) -> None:
    account = new_account()
    with webhook_receiver(SECRET, status=500) as broken, webhook_receiver(SECRET) as healthy:
        failing = await subscribe(sessionmaker, broken.url, account)
        working = await subscribe(sessionmaker, healthy.url, account)
        subscriptions.extend([failing, working])
        notification_id = await queue_notification(sessionmaker, account)

        result = await deliver(time_env, task_queue, notification_id)

    assert result.failed == [failing]
    assert result.delivered == [working]
    assert len(broken.received) == DELIVERY_MAX_ATTEMPTS
    row = await delivery_row(sessionmaker, notification_id, failing)
    assert row.attempts == DELIVERY_MAX_ATTEMPTS
    assert str(row.last_error).startswith("HTTP 500")
    assert row.delivered_at is None
    [alert] = await alerts(sessionmaker, notification_id, failing)
    assert alert.kind == "webhook_delivery_failed"
    assert "HTTP 500" in alert.message
    # The outbox row is done: every subscriber got it or an operator was alerted.
    assert await delivered_at_set(sessionmaker, notification_id)


async def test_receiver_rejecting_with_4xx_is_not_retried(
    time_env: WorkflowEnvironment,
    sessionmaker: Sessionmaker,
    task_queue: str,
    subscriptions: list[int],
) -> None:
    account = new_account()
    with webhook_receiver(SECRET, status=410) as gone:
        subscription = await subscribe(sessionmaker, gone.url, account)
        subscriptions.append(subscription)
        notification_id = await queue_notification(sessionmaker, account)

        result = await deliver(time_env, task_queue, notification_id)

    assert result.failed == [subscription]
    assert len(gone.received) == 1
    assert len(await alerts(sessionmaker, notification_id, subscription)) == 1


async def test_wrong_secret_is_refused_by_the_receiver_and_alerted(
    time_env: WorkflowEnvironment,
    sessionmaker: Sessionmaker,
    task_queue: str,
    subscriptions: list[int],
) -> None:
    account = new_account()
    with webhook_receiver("the-receivers-own-secret-xyz") as receiver:
        subscription = await subscribe(sessionmaker, receiver.url, account, secret=SECRET)
        subscriptions.append(subscription)
        notification_id = await queue_notification(sessionmaker, account)

        result = await deliver(time_env, task_queue, notification_id)

    assert result.failed == [subscription]
    assert [r.signature_valid for r in receiver.received] == [False]


async def test_starting_delivery_twice_delivers_once_and_outlives_the_caller(
    time_env: WorkflowEnvironment,
    task_queue: str,
    sessionmaker: Sessionmaker,
    subscriptions: list[int],
) -> None:
    account = new_account()
    async with httpx.AsyncClient() as http:
        activities = NotificationActivities(sessionmaker, http)
        env = ActivityEnvironment(client=time_env.client)
        env.info = dataclasses.replace(env.info, task_queue=task_queue)
        with webhook_receiver(SECRET, script=[500]) as receiver:
            subscription = await subscribe(sessionmaker, receiver.url, account)
            subscriptions.append(subscription)
            notification_id = await queue_notification(sessionmaker, account)
            ref = NotificationRef(notification_id=notification_id)
            # A retried activity starts it again: the running delivery is left alone.
            await env.run(activities.start_delivery, ref)
            await env.run(activities.start_delivery, ref)
            delivery = time_env.client.get_workflow_handle_for(
                NotificationDeliveryWorkflow.run, notification_workflow_id(notification_id)
            )
            result = await delivery.result()

    assert result.delivered == [subscription]
    assert [r.signature_valid for r in receiver.received] == [True, True]
    assert len({r.delivery for r in receiver.received}) == 1


async def test_a_notification_nobody_subscribed_to_is_done_without_a_delivery_workflow(
    time_env: WorkflowEnvironment, task_queue: str, sessionmaker: Sessionmaker
) -> None:
    account = new_account()
    async with sessionmaker() as db:
        assert await WebhookRepository(db).targets(account) == [], "a catch-all is left active"
    notification_id = await queue_notification(sessionmaker, account)
    async with httpx.AsyncClient() as http:
        env = ActivityEnvironment(client=time_env.client)
        env.info = dataclasses.replace(env.info, task_queue=task_queue)
        await env.run(
            NotificationActivities(sessionmaker, http).start_delivery,
            NotificationRef(notification_id=notification_id),
        )

    assert await delivered_at_set(sessionmaker, notification_id)
    with pytest.raises(RPCError) as raised:
        await time_env.client.get_workflow_handle(
            notification_workflow_id(notification_id)
        ).describe()
    assert raised.value.status is RPCStatusCode.NOT_FOUND
