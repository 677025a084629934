"""A value PostgreSQL refuses fails every retry: it is a refusal, not a transient fault."""

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from activities.refusals import DataErrorsAreRefusals, is_data_error

Sessionmaker = async_sessionmaker[AsyncSession]


async def refused_by_postgres(sessionmaker: Sessionmaker, sql: str, **values: Any) -> Exception:
    with pytest.raises(DBAPIError) as raised:
        async with sessionmaker() as db:
            await db.execute(text(sql), values)
    return raised.value


@pytest.mark.parametrize(
    ("sql", "values"),
    [
        ("SELECT CAST(:v AS text)", {"v": "a\x00b"}),  # NUL: invalid byte sequence for UTF8
        ("SELECT CAST(:v AS numeric(24, 8))", {"v": "1e30"}),  # numeric field overflow
    ],
)
async def test_postgres_data_errors_are_recognised(
    sessionmaker: Sessionmaker, sql: str, values: dict[str, Any]
) -> None:
    err = await refused_by_postgres(sessionmaker, sql, **values)

    assert is_data_error(err)


async def test_a_lost_connection_is_not_a_data_error() -> None:
    assert not is_data_error(ConnectionResetError("connection reset by peer"))


class _Raising(ActivityInboundInterceptor):
    def __init__(self, err: Exception) -> None:
        self.err = err

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        raise self.err


async def test_an_activity_s_data_error_becomes_non_retryable_without_its_values(
    sessionmaker: Sessionmaker,
) -> None:
    err = await refused_by_postgres(sessionmaker, "SELECT CAST(:v AS text)", v="secret-reason\x00")
    interceptor = DataErrorsAreRefusals().intercept_activity(_Raising(err))

    with pytest.raises(ApplicationError) as refused:
        await interceptor.execute_activity(None)  # type: ignore[arg-type]

    assert refused.value.non_retryable
    assert refused.value.type == "DataError"
    assert "secret-reason" not in str(refused.value)
