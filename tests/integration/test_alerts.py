"""Alerts reach operators: listed, acknowledged (audited), delivered on the operator channel
and never to the account's traders; counted on /metrics."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.alerts import FLEET_AUDIT_ID
from domain.notifications import DeliverNotificationInput, notification_workflow_id
from domain.roles import Role
from domain.status import SessionStatus
from starter.runtime.settings import Settings
from starter.services.keys import KeyService
from store.alerts import AlertRepository
from store.audit import AuditRepository
from store.notifications import NotificationRepository
from store.sessions import SessionRepository
from tests.fixtures.factories import session_values
from tests.fixtures.notification_data import SECRET, deactivate, subscribe
from tests.fixtures.webhook_receiver import webhook_receiver
from tests.integration.polling import eventually

Sessionmaker = async_sessionmaker[AsyncSession]


async def _session(sessionmaker: Sessionmaker) -> dict[str, object]:
    values = session_values(status=SessionStatus.CLEANUP_FAILED)
    async with sessionmaker.begin() as db:
        await SessionRepository(db).insert_if_absent(values)
    return values


async def _raise(
    sessionmaker: Sessionmaker, kind: str, session_id: str | None, message: str = "it broke"
) -> int:
    key = f"test:{uuid.uuid4().hex}"
    async with sessionmaker.begin() as db:
        alerts = AlertRepository(db)
        assert await alerts.raise_alert(
            kind=kind, message=message, session_id=session_id, dedupe_key=key
        )
        # A retried raise is one alert, one notification.
        assert not await alerts.raise_alert(
            kind=kind, message=message, session_id=session_id, dedupe_key=key
        )
        notification_id = await alerts.notification_id(key)
    assert notification_id is not None
    return notification_id


@pytest.fixture
async def hooks(sessionmaker: Sessionmaker) -> AsyncIterator[list[int]]:
    ids: list[int] = []
    yield ids
    await deactivate(sessionmaker, ids)


async def test_an_alert_is_listed_filtered_paged_and_acknowledged_once_on_the_record(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    values = await _session(sessionmaker)
    session_id = str(values["id"])
    kind = f"test_{uuid.uuid4().hex[:8]}"
    for n in range(3):
        await _raise(sessionmaker, kind, session_id, f"problem {n}")

    listed = (await api.get("/alerts", params={"kind": kind})).json()
    assert [a["message"] for a in listed["alerts"]] == ["problem 2", "problem 1", "problem 0"]
    assert {a["state"] for a in listed["alerts"]} == {"open"}
    assert listed["alerts"][0]["account_id"] == values["account_id"]
    first_page = (await api.get("/alerts", params={"kind": kind, "limit": 2})).json()
    second_page = (
        await api.get(
            "/alerts", params={"kind": kind, "limit": 2, "before_id": first_page["next_before_id"]}
        )
    ).json()
    assert [a["message"] for a in second_page["alerts"]] == ["problem 0"]
    assert second_page["next_before_id"] is None

    newest = listed["alerts"][0]["id"]
    acked = await api.post(f"/alerts/{newest}/ack", json={"actor": "op-jane", "reason": "seen"})
    again = await api.post(f"/alerts/{newest}/ack", json={"actor": "op-bob"})

    assert acked.status_code == 200
    assert acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"].endswith(":op-jane")
    assert again.json()["acknowledged_by"] == acked.json()["acknowledged_by"]
    open_ones = (await api.get("/alerts", params={"kind": kind, "state": "open"})).json()
    acked_ones = (await api.get("/alerts", params={"kind": kind, "state": "acknowledged"})).json()
    by_session = (await api.get("/alerts", params={"session_id": session_id})).json()
    assert [a["message"] for a in open_ones["alerts"]] == ["problem 1", "problem 0"]
    assert [a["id"] for a in acked_ones["alerts"]] == [newest]
    assert len(by_session["alerts"]) == 3
    async with sessionmaker() as db:
        events = await AuditRepository(db).for_session(session_id)
    [ack] = [e for e in events if e.action == "alert.acknowledged"]
    assert ack.reason == "seen"
    assert ack.details == {"alert_id": newest, "kind": kind}
    assert (await api.post("/alerts/999999999/ack")).status_code == 404


async def test_an_alert_about_no_session_is_acknowledged_under_the_fleet(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    kind = f"test_{uuid.uuid4().hex[:8]}"
    await _raise(sessionmaker, kind, None)
    [alert] = (await api.get("/alerts", params={"kind": kind})).json()["alerts"]
    assert alert["session_id"] is None

    await api.post(f"/alerts/{alert['id']}/ack")

    async with sessionmaker() as db:
        events = await AuditRepository(db).for_session(FLEET_AUDIT_ID)
    assert alert["id"] in [e.details.get("alert_id") for e in events]


async def test_traders_and_auditors_neither_see_nor_acknowledge_alerts(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    keys = KeyService(sessionmaker)
    trader = await keys.create(Role.TRADER, account_id="acc-alerts")
    auditor = await keys.create(Role.AUDITOR)
    for key in (trader, auditor):
        headers = {"Authorization": f"Bearer {key.api_key}"}
        assert (await api.get("/alerts", headers=headers)).status_code == 403
        assert (await api.post("/alerts/1/ack", headers=headers)).status_code == 403


async def test_alerts_go_to_operator_webhooks_and_never_to_the_accounts_traders(
    api: httpx.AsyncClient,
    sessionmaker: Sessionmaker,
    dev_client: Client,
    settings: Settings,
    hooks: list[int],
) -> None:
    values = await _session(sessionmaker)
    with webhook_receiver(SECRET) as operators, webhook_receiver(SECRET) as traders:
        created = await api.post(
            "/webhooks", json={"url": operators.url, "secret": SECRET, "scope": "operators"}
        )
        assert created.status_code == 201
        assert created.json()["scope"] == "operators"
        hooks.append(created.json()["id"])
        hooks.append(await subscribe(sessionmaker, traders.url, str(values["account_id"])))
        notification_id = await _raise(sessionmaker, "cleanup_failed", str(values["id"]))

        # What start_delivery does for it (every alert-raising activity calls it).
        await dev_client.execute_workflow(
            "NotificationDelivery",
            DeliverNotificationInput(notification_id=notification_id),
            id=notification_workflow_id(notification_id),
            task_queue=settings.temporal_task_queue,
        )

    [received] = operators.received
    assert received.signature_valid
    assert received.event == "alert.cleanup_failed"
    assert received.json["audience"] == "operators"
    assert received.json["payload"]["session_id"] == values["id"]
    assert traders.received == []


async def test_an_operators_subscription_takes_no_account(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/webhooks",
        json={
            "url": "https://ops.example.com/alerts",
            "secret": SECRET,
            "scope": "operators",
            "account_id": "acc-1",
        },
    )
    assert response.status_code == 422


async def test_metrics_count_alerts_raised_and_open_by_kind(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    kind = f"test_{uuid.uuid4().hex[:8]}"
    await _raise(sessionmaker, kind, None)
    await _raise(sessionmaker, kind, None)
    [newest, _] = (await api.get("/alerts", params={"kind": kind})).json()["alerts"]
    await api.post(f"/alerts/{newest['id']}/ack")

    async def scraped() -> str | None:
        text = (await api.get("/metrics")).text
        return text if f'kind="{kind}"' in text else None

    text = await eventually(scraped)
    assert f'trading_alerts_total{{kind="{kind}"}} 2.0' in text
    assert f'trading_alerts_open{{kind="{kind}"}} 1.0' in text
    assert 'trading_alerts_open{kind="cleanup_failed"}' in text  # known kinds, even at 0


async def test_an_alert_notification_is_on_the_operators_stream_listing(
    api: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    notification_id = await _raise(sessionmaker, "database_outage", None)
    listed = (await api.get("/notifications", params={"after_id": notification_id - 1})).json()
    [mine] = [n for n in listed if n["id"] == notification_id]
    assert mine["kind"] == "alert.database_outage"
    assert mine["audience"] == "operators"
    assert mine["session_id"] is None
    async with sessionmaker() as db:
        row = await NotificationRepository(db).get(notification_id)
    assert row is not None
    assert row.account_id is None
