"""The halt webhook's delivery: POST the signed halt to the algorithm, or alert who must know.

Started by the halt step (``activities/termination.py``) after the gate closed; its workflow
(``workflows/halt_webhook.py``) retries a failed POST with backoff, on its own clock.
"""

import json
import time

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.notifications import HTTP_TIMEOUT, MAX_ERROR_CHARS, announce_alert
from domain import signing
from domain.halt_webhook import (
    HALT_EVENT,
    HaltDeliveryFailedInput,
    HaltDeliveryInput,
    halt_delivery_id,
)
from domain.notifications import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryOutcome,
    classify_status,
)
from store.algorithms import AlgorithmRepository
from store.audit import AuditRepository
from store.termination import AlertRepository


class HaltWebhookActivities:
    """Built once per worker with the shared session factory and HTTP client."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient
    ) -> None:
        self.sessionmaker = sessionmaker
        self.http = http

    @activity.defn
    async def deliver_halt(self, input: HaltDeliveryInput) -> bool:
        """POST the halt once, signed with the algorithm's secret; raise to be retried, or
        give up at once on a 4xx (but 408/429). False when the algorithm has no webhook."""
        async with self.sessionmaker() as db:
            target = await AlgorithmRepository(db).halt_webhook(input.algorithm_id)
        if target is None:
            return False
        url, secret = target
        body = json.dumps(input.body()).encode()
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(int(time.time())),
            EVENT_HEADER: HALT_EVENT,
            DELIVERY_HEADER: halt_delivery_id(input.session_id),
        }
        if secret:
            headers[SIGNATURE_HEADER] = signing.sign(secret, body)
        else:
            activity.logger.warning("algorithm %s has no halt webhook secret", input.algorithm_id)
        try:
            response = await self.http.post(
                url, content=body, headers=headers, timeout=HTTP_TIMEOUT
            )
        except httpx.HTTPError as err:
            raise _failed(input, f"{type(err).__name__}: {err}", rejected=False) from err
        outcome = classify_status(response.status_code)
        if outcome is DeliveryOutcome.DELIVERED:
            return True
        error = f"HTTP {response.status_code}: {response.text[:200]}"
        raise _failed(input, error, rejected=outcome is DeliveryOutcome.REJECTED)

    @activity.defn
    async def record_halt_webhook_failure(self, input: HaltDeliveryFailedInput) -> None:
        """The webhook gave up: one operator alert and one audit event per session."""
        delivery = input.delivery
        message = (
            f"halt webhook of algorithm {delivery.algorithm_id} for session "
            f"{delivery.session_id} was not delivered: {input.error}"
        )[:2000]
        key = f"{delivery.session_id}:halt_webhook_failed"
        async with self.sessionmaker.begin() as db:
            await AlertRepository(db).raise_alert(
                kind="halt_webhook_failed",
                message=message,
                session_id=delivery.session_id,
                dedupe_key=key,
            )
            await AuditRepository(db).append(
                session_id=delivery.session_id,
                action="algorithm.halt_webhook_failed",
                actor="system",
                reason=input.error[:MAX_ERROR_CHARS],
                details={"algorithm_id": delivery.algorithm_id},
                dedupe_key=key,
            )
        activity.logger.error(message)
        await announce_alert(self.sessionmaker, key)  # to the operators' webhooks


def _failed(input: HaltDeliveryInput, error: str, *, rejected: bool) -> ApplicationError:
    error = error[:MAX_ERROR_CHARS]
    activity.logger.warning(
        "halt webhook %s attempt %d failed: %s",
        halt_delivery_id(input.session_id),
        activity.info().attempt,
        error,
    )
    # A receiver being down is expected, not our bug: BENIGN keeps a traceback per attempt
    # out of the logs; the line above says what happened.
    return ApplicationError(
        error,
        type="HaltWebhookRejected" if rejected else "HaltWebhookFailed",
        non_retryable=rejected,
        category=ApplicationErrorCategory.BENIGN,
    )
