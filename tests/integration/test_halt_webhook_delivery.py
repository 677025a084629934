"""The halt webhook's POST: signed like every webhook, one delivery id, 4xx not retried."""

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.halt_webhook import HaltWebhookActivities
from domain.halt_webhook import HALT_EVENT, HaltDeliveryInput
from store.models import Algorithm
from tests.fixtures.webhook_receiver import webhook_receiver


async def algorithm_with_webhook(
    sessionmaker: async_sessionmaker[AsyncSession], url: str, secret: str
) -> str:
    algorithm_id = f"algo-{uuid.uuid4().hex[:8]}"
    async with sessionmaker.begin() as db:
        db.add(Algorithm(id=algorithm_id, halt_webhook_url=url, halt_webhook_secret=secret))
    return algorithm_id


async def test_halt_webhook_is_signed_with_the_algorithms_secret(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    with webhook_receiver("halt-secret") as receiver:
        algorithm_id = await algorithm_with_webhook(sessionmaker, receiver.url, "halt-secret")
        delivery = HaltDeliveryInput(
            session_id="s-halt-1", algorithm_id=algorithm_id, reason="LOSS_LIMIT", detail="-200"
        )
        async with httpx.AsyncClient() as http:
            activities = HaltWebhookActivities(sessionmaker, http)
            delivered = await ActivityEnvironment().run(activities.deliver_halt, delivery)

    assert delivered is True
    [received] = receiver.received
    assert received.signature_valid
    assert (received.event, received.delivery) == (HALT_EVENT, "halt-s-halt-1")
    assert received.json == {
        "session_id": "s-halt-1",
        "algorithm_id": algorithm_id,
        "reason": "LOSS_LIMIT",
        "detail": "-200",
    }


async def test_halt_webhook_refused_with_a_4xx_is_not_retried(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # The receiver knows another secret: it answers 401, which no retry can mend.
    with webhook_receiver("another-secret") as receiver:
        algorithm_id = await algorithm_with_webhook(sessionmaker, receiver.url, "halt-secret")
        delivery = HaltDeliveryInput(session_id="s-halt-2", algorithm_id=algorithm_id, reason="X")
        async with httpx.AsyncClient() as http:
            activities = HaltWebhookActivities(sessionmaker, http)
            with pytest.raises(ApplicationError) as refused:
                await ActivityEnvironment().run(activities.deliver_halt, delivery)

    assert refused.value.non_retryable
    assert refused.value.type == "HaltWebhookRejected"
    assert "HTTP 401" in refused.value.message
