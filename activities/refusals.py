"""Business refusals: what no retry can fix is reported to Temporal as non-retryable."""

from temporalio.exceptions import ApplicationError

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
