"""The audit trail for compliance: a session's events, and exports as NDJSON or CSV."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from domain.text import Actor, Identifier
from starter.api.auth import ExportAudit, ReadSessionAudit
from starter.api.body import StrictJsonRoute
from starter.api.deps import AuditDep, SessionsDep
from starter.api.schemas import SessionIdPath
from starter.api.schemas_operations import AuditEventOut
from starter.services.audit import ExportFormat
from starter.services.errors import InvalidRequestError, NotFoundError
from store.audit import AuditQuery

router = APIRouter(tags=["audit"], route_class=StrictJsonRoute)


@router.get("/sessions/{session_id}/audit")
async def session_audit(
    session_id: SessionIdPath, audit: AuditDep, sessions: SessionsDep, _: ReadSessionAudit
) -> list[AuditEventOut]:
    """The session's audit events, oldest first."""
    if await sessions.account_of(session_id) is None:
        raise NotFoundError(f"session {session_id!r} not found")
    return await audit.for_session(session_id)


@router.get("/audit", response_class=StreamingResponse)
async def export_audit(
    audit: AuditDep,
    _: ExportAudit,
    since: Annotated[AwareDatetime | None, Query(description="From (inclusive).")] = None,
    until: Annotated[AwareDatetime | None, Query(description="To (exclusive).")] = None,
    actor: Annotated[Actor | None, Query(description="Only this actor's.")] = None,
    action: Annotated[Identifier | None, Query(description="Only this action.")] = None,
    account: Annotated[Identifier | None, Query(description="Only this account's.")] = None,
    format: Annotated[ExportFormat, Query(description="ndjson or csv.")] = ExportFormat.NDJSON,
) -> StreamingResponse:
    """Every matching event, oldest first, streamed (a day of a busy desk is fine)."""
    if since is not None and until is not None and until <= since:
        raise InvalidRequestError("until must be later than since", field="until")
    query = AuditQuery(since=since, until=until, actor=actor, action=action, account_id=account)
    filename = f"audit.{format.value}"
    return StreamingResponse(
        audit.export(query, format),
        media_type=format.media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
