"""No key, hash, password or SQL parameter value in the logs.

A whole session's life through the API at DEBUG, and database errors as the worker logs them.
"""

import logging
import traceback
from collections.abc import Iterator
from decimal import Decimal
from uuid import uuid4

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from temporalio import activity

from domain.roles import Role
from starter.runtime.logging_setup import configure_logging
from starter.runtime.settings import Settings
from starter.services.keys import KeyService
from starter.services.principals import hash_key
from store.audit import AuditRepository
from store.db import create_sessionmaker
from store.models import AuditEvent
from store.sessions import SessionRepository
from tests.fixtures.factories import session_values
from tests.integration.api_helpers import fill_body, session_body, wait_for_status


async def test_a_full_session_life_logs_no_secret(
    api: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = KeyService(sessionmaker)
    trader = await keys.create(Role.TRADER, "acc-logs")
    service = await keys.create(Role.SERVICE)
    as_trader = {"Authorization": f"Bearer {trader.api_key}"}
    as_service = {"X-API-Key": service.api_key}
    body = session_body(account_id="acc-logs")
    session_id = body["session_id"]

    with caplog.at_level(logging.DEBUG):
        assert (await api.post("/sessions", json=body, headers=as_trader)).status_code == 201
        await wait_for_status(api, session_id, {"ACTIVE"})
        fill = fill_body("f1", "BUY", "2", "10")
        assert (
            await api.post(f"/sessions/{session_id}/fills", json=fill, headers=as_service)
        ).status_code == 201
        mark = {"symbol": "ACME", "price": "9"}
        assert (
            await api.post(f"/sessions/{session_id}/marks", json=mark, headers=as_service)
        ).status_code == 201
        # A refused call logs too: the wrong key must not show up either.
        wrong = await api.post(
            f"/sessions/{session_id}/terminate",
            json={"reason": "x"},
            headers={"Authorization": f"Bearer {trader.api_key}x"},
        )
        assert wrong.status_code == 401
        terminate = {"reason": "end of day", "actor": "desk"}
        response = await api.post(
            f"/sessions/{session_id}/terminate", json=terminate, headers=as_trader
        )
        assert response.status_code == 202
        await wait_for_status(api, session_id, {"TERMINATED"})

    logged = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    assert session_id in logged  # the capture did see the session's life
    for secret in (trader.api_key, service.api_key, hash_key(trader.api_key)):
        assert secret not in logged
    for key in (trader, service):
        assert key.api_key.split(".", 1)[1] not in logged  # not even the secret half
    url = make_url(settings.resolved_database_url())
    if url.password:
        assert url.password not in logged
    assert settings.resolved_database_url() not in logged


class ServiceLog:
    """What the worker and the API write: ``configure_logging`` on a fresh root, to stderr."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    def read(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text


@pytest.fixture
def service_log(capsys: pytest.CaptureFixture[str]) -> Iterator[ServiceLog]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, activity.logger.activity_info_on_message)
    root.handlers.clear()
    configure_logging(Settings(log_level="INFO"))
    try:
        yield ServiceLog(capsys)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        activity.logger.activity_info_on_message = saved[2]


SECRET_REASON = "reason-of-account-7781-\x00"
SECRET_ID = "sess-secret-5150"


async def insert_nul_reason(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A NUL in a reason, as in the hostile run: PostgreSQL refuses the encoding."""
    async with sessionmaker.begin() as db:
        await AuditRepository(db).append(
            session_id=SECRET_ID, action="session.extended", actor="desk", reason=SECRET_REASON
        )


async def insert_overflowing_limit(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A loss limit past NUMERIC(24, 8): a DataError (numeric field overflow)."""
    async with sessionmaker.begin() as db:
        values = session_values(id=SECRET_ID, loss_limit=Decimal(10) ** 20)
        values["end_detail"] = SECRET_REASON.rstrip("\x00")
        await SessionRepository(db).insert_if_absent(values)


FAILING_WRITES = {
    "nul-in-text": (insert_nul_reason, "invalid byte sequence"),
    "numeric-overflow": (insert_overflowing_limit, "numeric field overflow"),
}


def log_like_temporal(err: BaseException) -> None:
    """How the Temporal worker logs a failing activity: the exception and its traceback."""
    try:
        raise err
    except BaseException:
        logging.getLogger("temporalio.activity").warning(
            "Completing activity as failed", exc_info=True
        )
    logging.getLogger("activities").error("extend failed: %s", err)


def assert_no_values(logged: str) -> None:
    assert "Completing activity as failed" in logged  # the failure itself is still logged
    assert "extend failed" in logged
    assert SECRET_ID not in logged
    assert "reason-of-account-7781" not in logged


@pytest.mark.parametrize("write", FAILING_WRITES)
async def test_a_failing_statement_logs_no_parameter_values(
    sessionmaker: async_sessionmaker[AsyncSession], service_log: ServiceLog, write: str
) -> None:
    insert, error = FAILING_WRITES[write]
    with pytest.raises(DBAPIError) as raised:
        await insert(sessionmaker)
    # PostgreSQL's data exception class (22). SQLAlchemy's asyncpg dialect wraps it as a plain
    # DBAPIError, not DataError: whoever classifies errors must look at the SQLSTATE.
    assert getattr(raised.value.orig, "sqlstate", "")[:2] == "22"

    log_like_temporal(raised.value)

    logged = service_log.read()
    assert_no_values(logged)
    assert error in logged  # what went wrong is still there


async def test_an_engine_without_hide_parameters_is_redacted_by_the_log_filter(
    database_url: str, service_log: ServiceLog
) -> None:
    engine = create_async_engine(database_url)  # as any engine made outside store.db
    try:
        with pytest.raises(DBAPIError) as raised:
            await insert_nul_reason(create_sessionmaker(engine))
    finally:
        await engine.dispose()
    assert SECRET_ID in str(raised.value)  # the error itself does carry the values

    log_like_temporal(raised.value)

    assert_no_values(service_log.read())
    assert "[parameters: [redacted]]" in service_log.read()


async def test_a_duplicate_key_logs_no_key_values(
    sessionmaker: async_sessionmaker[AsyncSession], service_log: ServiceLog
) -> None:
    # PostgreSQL's DETAIL quotes the duplicate key: "Key (dedupe_key)=(...) already exists."
    dedupe_key = f"{SECRET_ID}:{uuid4().hex}"

    async def add_event() -> None:
        # A plain insert: append() skips a duplicate on purpose.
        async with sessionmaker.begin() as db:
            db.add(AuditEvent(session_id=SECRET_ID, action="a", actor="b", dedupe_key=dedupe_key))

    await add_event()
    with pytest.raises(IntegrityError) as raised:
        await add_event()
    assert SECRET_ID in "".join(traceback.format_exception(raised.value))  # asyncpg's DETAIL

    log_like_temporal(raised.value)

    assert_no_values(service_log.read())
    assert "duplicate key value violates unique constraint" in service_log.read()
