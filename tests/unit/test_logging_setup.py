"""JSON log lines carry the ids that tie a line to its session, workflow and activity."""

import dataclasses
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.testing import ActivityEnvironment

from starter.runtime.logging_setup import JsonFormatter, configure_logging
from starter.runtime.settings import Settings


class Lines(logging.Handler):
    """Keeps every record formatted as the service would write it."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = activity.logger.base_logger
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_activity_log_line_names_workflow_run_and_session(lines: Lines) -> None:
    @activity.defn
    async def purge() -> None:
        activity.logger.info("purged %d sessions", 3, extra={"batch": {"fills": 7}})

    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        activity_type="purge",
        workflow_id="trading-session-s-42",
        workflow_run_id="r-1",
    )
    await env.run(purge)

    [line] = lines.lines
    assert line["level"] == "INFO"
    assert line["message"].startswith("purged 3 sessions")
    assert line["workflow_id"] == "trading-session-s-42"
    assert line["run_id"] == "r-1"
    assert line["session_id"] == "s-42"
    assert line["activity_type"] == "purge"
    assert line["batch"] == {"fills": 7}


def test_workflow_extras_and_explicit_session_id_are_lifted_to_the_top() -> None:
    record = logging.makeLogRecord(
        {
            "name": "temporalio.workflow",
            "levelname": "WARNING",
            "msg": "loss at %s %%",
            "args": (80,),
            "temporal_workflow": {
                "workflow_id": "housekeeping-1",
                "run_id": "r-9",
                "workflow_type": "Housekeeping",
            },
            "session_id": "s-7",
        }
    )

    line = json.loads(JsonFormatter().format(record))

    assert line["message"] == "loss at 80 %"
    assert line["workflow_type"] == "Housekeeping"
    assert line["run_id"] == "r-9"
    assert line["session_id"] == "s-7"


def test_exceptions_are_kept_in_the_line() -> None:
    try:
        raise ValueError("bad mark")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )

    line = json.loads(JsonFormatter().format(record))

    assert "ValueError: bad mark" in line["exception"]


def test_configure_logging_installs_json_on_a_bare_process_and_only_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        monkeypatch.setattr(logging.getLogger(name), "handlers", [])
        monkeypatch.setattr(logging.getLogger(name), "propagate", False)

    monkeypatch.setattr(activity.logger, "activity_info_on_message", True)
    monkeypatch.setattr(workflow.logger, "workflow_info_on_message", True)

    configure_logging(Settings())
    configure_logging(Settings())
    logging.getLogger("uvicorn.access").info("GET /health/live 200")

    assert len(root.handlers) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert json.loads(line)["logger"] == "uvicorn.access"
    # ids travel as fields, so Temporal's loggers stop repeating them inside the message
    assert not activity.logger.activity_info_on_message
    assert not workflow.logger.workflow_info_on_message
