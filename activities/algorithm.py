"""The algorithm-control port, and the default that implements it on our own database.

Like :class:`~activities.broker.Broker`, a real adapter (an OMS kill switch, say) implements
:class:`AlgorithmControl` and is passed to the activities that need it. The default closes
the session's trading gate (what the pre-trade check reads) and announces the halt with
``pg_notify`` on commit: that is the halt. The algorithm's halt webhook, when it has one, is
a delivery of its own (``activities/halt_webhook.py``) that never holds up the termination.
"""

import json
from dataclasses import asdict, dataclass
from typing import Protocol

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from store.algorithms import AlgorithmRepository
from store.sessions import SessionRepository


@dataclass(frozen=True)
class Halt:
    """What an algorithm is told when its session ends: which, and why."""

    session_id: str
    algorithm_id: str
    reason: str
    detail: str | None


class AlgorithmControl(Protocol):
    async def set_gate(
        self, db: AsyncSession, session_id: str, *, open_: bool, reason: str | None
    ) -> None:
        """Open or close the session's trading gate; the caller holds the row lock."""
        ...

    async def halt(self, db: AsyncSession, halt: Halt) -> str | None:
        """In the caller's transaction: close the gate and announce the halt (on commit).

        Returns the algorithm's halt webhook, if it has one: the caller starts its
        delivery once the transaction committed, and goes on without waiting for it.
        """
        ...


class DatabaseAlgorithmControl:
    """The gate in ``trading_sessions``, NOTIFY on ``algorithm_halt``, an optional webhook."""

    def __init__(self, http: httpx.AsyncClient | None = None) -> None:
        self.http = http  # kept for adapters built with one; the webhook has its own delivery

    async def set_gate(
        self, db: AsyncSession, session_id: str, *, open_: bool, reason: str | None
    ) -> None:
        await SessionRepository(db).set_gate(session_id, open_=open_, reason=reason)

    async def halt(self, db: AsyncSession, halt: Halt) -> str | None:
        await self.set_gate(db, halt.session_id, open_=False, reason=f"halted: {halt.reason}")
        algorithms = AlgorithmRepository(db)
        await algorithms.announce_halt(json.dumps(asdict(halt)))
        return await algorithms.halt_webhook_url(halt.algorithm_id)
