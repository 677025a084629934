"""Webhook subscriptions and the record of each notification's delivery to each of them."""

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.alerts import Audience
from store.models import WebhookDelivery, WebhookSubscription


class WebhookRepository:
    """Subscriptions and per-subscription delivery records; the caller owns the transaction."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def subscribe(
        self,
        *,
        url: str,
        secret: str,
        account_id: str | None,
        scope: Audience = Audience.ACCOUNT,
    ) -> WebhookSubscription:
        """Add an active subscription; ``account_id`` None means every account. Scope
        ``operators`` receives every alert and nothing else."""
        row = WebhookSubscription(
            url=url, secret=secret, account_id=account_id, scope=scope.value, active=True
        )
        self.db.add(row)
        await self.db.flush()
        await self.db.refresh(row)
        return row

    async def subscriptions(self) -> list[WebhookSubscription]:
        """Every subscription, active or not, oldest first."""
        stmt = select(WebhookSubscription).order_by(WebhookSubscription.id)
        return list((await self.db.execute(stmt)).scalars())

    async def get(self, subscription_id: int) -> WebhookSubscription | None:
        return await self.db.get(WebhookSubscription, subscription_id)

    async def deactivate(self, subscription_id: int) -> WebhookSubscription | None:
        """Stop future deliveries; the row and its delivery history stay."""
        row = await self.db.get(WebhookSubscription, subscription_id, with_for_update=True)
        if row is not None:
            row.active = False
            await self.db.flush()
        return row

    async def targets(
        self, account_id: str | None, audience: Audience = Audience.ACCOUNT
    ) -> list[int]:
        """Active subscriptions for a notification: for an account's, that account's own and
        the catch-alls of scope ``account``; for an operator notification, those of scope
        ``operators``. Traders' subscriptions never see alerts, operators' see only alerts."""
        if audience is Audience.OPERATORS:
            match = WebhookSubscription.scope == Audience.OPERATORS.value
        else:
            match = and_(
                WebhookSubscription.scope == Audience.ACCOUNT.value,
                or_(
                    WebhookSubscription.account_id.is_(None),
                    WebhookSubscription.account_id == account_id,
                ),
            )
        stmt = (
            select(WebhookSubscription.id)
            .where(WebhookSubscription.active, match)
            .order_by(WebhookSubscription.id)
        )
        return list((await self.db.execute(stmt)).scalars())

    async def delivery(self, notification_id: int, subscription_id: int) -> WebhookDelivery | None:
        """The record of one notification's delivery to one subscription, freshly read."""
        return await self.db.get(
            WebhookDelivery, (notification_id, subscription_id), populate_existing=True
        )

    async def record_attempt(
        self,
        notification_id: int,
        subscription_id: int,
        *,
        attempt: int,
        error: str | None,
        next_attempt_at: datetime | None = None,
        delivered: bool = False,
    ) -> None:
        """Write one attempt's outcome; a repeated attempt number never lowers the count."""
        values: dict[str, Any] = {"attempts": attempt, "last_error": error}
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        if delivered:
            values["delivered_at"] = func.now()
        stmt = insert(WebhookDelivery).values(
            notification_id=notification_id, subscription_id=subscription_id, **values
        )
        values["attempts"] = func.greatest(WebhookDelivery.attempts, stmt.excluded.attempts)
        await self.db.execute(
            stmt.on_conflict_do_update(
                index_elements=[WebhookDelivery.notification_id, WebhookDelivery.subscription_id],
                set_=values,
            )
        )

    async def record_gave_up(self, notification_id: int, subscription_id: int, error: str) -> None:
        """The delivery will not be tried again: keep why, whatever the attempts recorded."""
        stmt = insert(WebhookDelivery).values(
            notification_id=notification_id, subscription_id=subscription_id, last_error=error
        )
        await self.db.execute(
            stmt.on_conflict_do_update(
                index_elements=[WebhookDelivery.notification_id, WebhookDelivery.subscription_id],
                set_={"last_error": error},
            )
        )
