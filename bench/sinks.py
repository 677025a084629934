"""Where the workload goes: the product's HTTP API, or straight into the baseline's database."""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.plan import LOSS_LIMIT, SessionPlan
from domain.positions import Side
from domain.status import SessionStatus
from store.ledger import LedgerRepository, NewFill
from store.market_marks import MarketMarkRepository, NewMarketMark
from store.sessions import SessionRepository

_OPEN = (SessionStatus.PENDING, SessionStatus.ACTIVE)


class Outcome(StrEnum):
    OK = "ok"
    ENDED = "ended"  # the session takes no more trades (HTTP 409): it ended first


class SinkError(Exception):
    """A request that failed for another reason than the session having ended."""


@dataclass(frozen=True)
class FillEvent:
    fill_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True)
class BatchAnswer:
    """What ``POST /marks`` said about one batch (zeros from the baseline's sink)."""

    sessions_affected: int = 0
    sessions_halted: int = 0
    sessions_woken: int = 0


class Sink(Protocol):
    async def start(self, plan: SessionPlan) -> Outcome: ...
    async def fill(self, session_id: str, fill: FillEvent) -> Outcome: ...
    async def mark(self, session_id: str, symbol: str, price: Decimal) -> Outcome: ...
    async def market_marks(self, marks: dict[str, Decimal]) -> BatchAnswer: ...
    async def aclose(self) -> None: ...


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


class HttpSink:
    """The product path: every start, fill and mark goes through the API, as a desk's would."""

    def __init__(
        self,
        api_url: str,
        concurrency: int,
        api_key: str | None = None,
        market_key: str | None = None,
        risk_key: str | None = None,
    ) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(
            base_url=api_url, timeout=60.0, limits=limits, headers=headers
        )
        # The feed's own connection and key (role market_data): batches never queue behind
        # the fills' slots, as a desk's market-data gateway has its own line.
        market_headers = {"Authorization": f"Bearer {market_key}"} if market_key else headers
        self.market = httpx.AsyncClient(base_url=api_url, timeout=60.0, headers=market_headers)
        # The kill switch's own line and key (role risk): a risk desk's, not the feed's.
        risk_headers = {"Authorization": f"Bearer {risk_key}"} if risk_key else headers
        self.risk = httpx.AsyncClient(base_url=api_url, timeout=60.0, headers=risk_headers)
        self.slots = asyncio.Semaphore(concurrency)

    async def _post(self, path: str, body: dict[str, Any]) -> Outcome:
        async with self.slots:
            try:
                response = await self.client.post(path, json=body)
            except httpx.HTTPError as err:
                raise SinkError(f"{type(err).__name__} {err}".strip()) from err
        if response.status_code in (200, 201, 202):
            return Outcome.OK
        if response.status_code == 409:
            return Outcome.ENDED
        raise SinkError(f"HTTP {response.status_code}: {response.text[:200]}")

    async def start(self, plan: SessionPlan) -> Outcome:
        return await self._post(
            "/sessions",
            {
                "session_id": plan.session_id,
                "account_id": plan.account_id,
                "algorithm_id": "bench-algo",
                "start_time": _iso(plan.start_at),
                "end_time": _iso(plan.end_at),
                "loss_limit": str(LOSS_LIMIT),
            },
        )

    async def fill(self, session_id: str, fill: FillEvent) -> Outcome:
        body = {
            "fill_id": fill.fill_id,
            "symbol": fill.symbol,
            "side": fill.side.value,
            "quantity": str(fill.quantity),
            "price": str(fill.price),
        }
        return await self._post(f"/sessions/{session_id}/fills", body)

    async def mark(self, session_id: str, symbol: str, price: Decimal) -> Outcome:
        return await self._post(
            f"/sessions/{session_id}/marks", {"symbol": symbol, "price": str(price)}
        )

    async def market_marks(self, marks: dict[str, Decimal]) -> BatchAnswer:
        body = {
            "marks": [{"symbol": symbol, "price": str(price)} for symbol, price in marks.items()]
        }
        try:
            response = await self.market.post("/marks", json=body)
        except httpx.HTTPError as err:
            raise SinkError(f"{type(err).__name__} {err}".strip()) from err
        if response.status_code != 200:
            raise SinkError(f"HTTP {response.status_code}: {response.text[:200]}")
        answer = response.json()
        return BatchAnswer(
            sessions_affected=int(answer["sessions_affected"]),
            sessions_halted=int(answer["sessions_halted"]),
            sessions_woken=int(answer["sessions_woken"]),
        )

    async def terminate(self, session_id: str) -> Outcome:
        body = {"reason": "benchmark finished", "actor": "bench"}
        return await self._post(f"/sessions/{session_id}/terminate", body)

    async def kill_switch(self, scope: dict[str, Any], reason: str) -> tuple[int, dict[str, Any]]:
        """``POST /kill-switch``: (status code, the switch as answered)."""
        try:
            response = await self.risk.post("/kill-switch", json={"scope": scope, "reason": reason})
        except httpx.HTTPError as err:
            raise SinkError(f"{type(err).__name__} {err}".strip()) from err
        if response.status_code not in (200, 201):
            raise SinkError(f"HTTP {response.status_code}: {response.text[:200]}")
        answer: dict[str, Any] = response.json()
        return response.status_code, answer

    async def kill_switch_status(self, kill_switch_id: int) -> dict[str, Any]:
        """``GET /kill-switch/{id}``: the switch's progress."""
        answer: dict[str, Any] = await self._risk_get(f"/kill-switch/{kill_switch_id}")
        return answer

    async def kill_switches(self) -> list[dict[str, Any]]:
        """``GET /kill-switch``: checks the risk key (and opens the connection) early."""
        switches: list[dict[str, Any]] = await self._risk_get("/kill-switch")
        return switches

    async def _risk_get(self, path: str) -> Any:
        try:
            response = await self.risk.get(path)
        except httpx.HTTPError as err:
            raise SinkError(f"{type(err).__name__} {err}".strip()) from err
        if response.status_code != 200:
            raise SinkError(f"HTTP {response.status_code}: {response.text[:200]}")
        return response.json()

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.market.aclose()
        await self.risk.aclose()


class DirectSink:
    """The baseline's path: the same rows the API writes, written directly (no workflow)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], concurrency: int) -> None:
        self.sessionmaker = sessionmaker
        self.slots = asyncio.Semaphore(concurrency)

    async def start(self, plan: SessionPlan) -> Outcome:
        values = {
            "id": plan.session_id,
            "account_id": plan.account_id,
            "algorithm_id": "bench-algo",
            "status": SessionStatus.PENDING,
            "start_time": datetime.fromtimestamp(plan.start_at, UTC),
            "end_time": datetime.fromtimestamp(plan.end_at, UTC),
            "loss_limit": LOSS_LIMIT,
            "warning_thresholds": [0.8],
            "idempotency_key": None,
            "workflow_id": "baseline-poller",
        }
        async with self.slots, self.sessionmaker.begin() as db:
            await SessionRepository(db).insert_if_absent(values)
        return Outcome.OK

    async def _open(self, db: AsyncSession, session_id: str) -> bool:
        row = await SessionRepository(db).get(session_id, for_update=True)
        return SessionStatus(row.status) in _OPEN

    async def fill(self, session_id: str, fill: FillEvent) -> Outcome:
        new = NewFill(
            fill_id=fill.fill_id,
            symbol=fill.symbol,
            side=fill.side,
            quantity=fill.quantity,
            price=fill.price,
            fee=Decimal(0),
            executed_at=datetime.now(UTC),
        )
        async with self.slots, self.sessionmaker.begin() as db:
            if not await self._open(db, session_id):
                return Outcome.ENDED
            await LedgerRepository(db).apply_fill(session_id, new)
        return Outcome.OK

    async def mark(self, session_id: str, symbol: str, price: Decimal) -> Outcome:
        async with self.slots, self.sessionmaker.begin() as db:
            if not await self._open(db, session_id):
                return Outcome.ENDED
            await LedgerRepository(db).add_mark(session_id, symbol, price, datetime.now(UTC))
        return Outcome.OK

    async def market_marks(self, marks: dict[str, Decimal]) -> BatchAnswer:
        """The batch stored as the API stores it; the poller finds its effect at its scan."""
        now = datetime.now(UTC)
        async with self.slots, self.sessionmaker.begin() as db:
            await MarketMarkRepository(db).upsert(
                [NewMarketMark(symbol, price, now) for symbol, price in marks.items()]
            )
        return BatchAnswer()

    async def aclose(self) -> None:
        return None
