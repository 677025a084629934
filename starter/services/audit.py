"""The audit trail for compliance: one session's events, and exports of any window as NDJSON
or CSV, streamed from a server-side cursor (never the whole trail in memory)."""

import csv
import io
import json
from collections.abc import AsyncIterator
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from starter.api.schemas_operations import AuditEventOut
from store.audit import AuditQuery, AuditRepository, stream_audit
from store.models import AuditEvent

CSV_COLUMNS = (
    "id",
    "occurred_at",
    "session_id",
    "action",
    "actor",
    "reason",
    "details",
    "workflow_id",
    "run_id",
)


class ExportFormat(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"

    @property
    def media_type(self) -> str:
        return "application/x-ndjson" if self is ExportFormat.NDJSON else "text/csv"


class AuditService:
    """Reads the append-only audit trail."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def for_session(self, session_id: str) -> list[AuditEventOut]:
        """A session's events, oldest first (a session's trail is short)."""
        async with self.sessionmaker() as db:
            rows = await AuditRepository(db).for_session(session_id)
        return [_out(row) for row in rows]

    async def export(self, query: AuditQuery, fmt: ExportFormat) -> AsyncIterator[bytes]:
        """The matching events, encoded a batch at a time, oldest first."""
        async with self.sessionmaker() as db:
            if fmt is ExportFormat.CSV:
                yield _csv_line(CSV_COLUMNS)
            async for batch in stream_audit(db, query):
                events = [_out(row) for row in batch]
                if fmt is ExportFormat.CSV:
                    yield b"".join(_csv_line(_csv_row(e)) for e in events)
                else:
                    yield b"".join(e.model_dump_json().encode() + b"\n" for e in events)


def _out(row: AuditEvent) -> AuditEventOut:
    return AuditEventOut.model_validate(row, from_attributes=True)


def _csv_row(event: AuditEventOut) -> tuple[str, ...]:
    data = event.model_dump(mode="json")
    data["details"] = json.dumps(data["details"], sort_keys=True, separators=(",", ":"))
    return tuple("" if data[c] is None else str(data[c]) for c in CSV_COLUMNS)


def _csv_line(values: tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    # Spreadsheet formula injection: a cell starting with = + - @ is taken as text.
    csv.writer(buffer, lineterminator="\r\n").writerow(
        f"'{v}" if v[:1] in ("=", "+", "-", "@") else v for v in values
    )
    return buffer.getvalue().encode()
