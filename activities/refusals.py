"""Business refusals: what no retry can fix is reported to Temporal as non-retryable."""

from typing import Any

import asyncpg.exceptions
import asyncpg.exceptions._base
import sqlalchemy.exc
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from store.models import TradingSession
from store.sessions import SessionNotFoundError, SessionRepository


def refusal(err: Exception) -> ApplicationError:
    """A non-retryable failure named after the domain error, with its message."""
    return ApplicationError(str(err), type=type(err).__name__, non_retryable=True)


async def locked_session(sessions: SessionRepository, session_id: str) -> TradingSession:
    """The session's row under a lock, or a refusal if there is no such session."""
    try:
        return await sessions.get(session_id, for_update=True)
    except SessionNotFoundError as err:
        raise refusal(err) from err


def is_data_error(err: BaseException) -> bool:
    """Whether PostgreSQL (or the driver before it) refused the values themselves: invalid
    encoding, a NUL character, a number out of range (SQLSTATE class 22). The same values
    fail every retry. SQLAlchemy's asyncpg dialect raises these as a plain DBAPIError, so
    the class is read from the driver's error, not from the exception's type."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, sqlalchemy.exc.DataError | asyncpg.exceptions.DataError):
            return True
        if isinstance(seen, asyncpg.exceptions._base.DataError):
            return True  # the driver refused a value before sending it
        if str(getattr(seen, "sqlstate", "") or "").startswith("22"):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


class DataErrorsAreRefusals(Interceptor):
    """Makes every activity's data error non-retryable, so a bad value fails fast instead of
    retrying for ever (and holding up the handler or the session that waits on it)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _RefuseDataErrors(next)


class _RefuseDataErrors(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except Exception as err:
            if isinstance(err, ApplicationError) or not is_data_error(err):
                raise
            # Named by the driver's error class only: its text may quote the values, and
            # none of them may reach the history or the log.
            orig = getattr(err, "orig", None) or err
            raise ApplicationError(
                f"the database refused the values ({type(orig).__name__})",
                type="DataError",
                non_retryable=True,
            ) from None
