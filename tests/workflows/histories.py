"""Recorded workflow histories: written on request, replayed by test_replay.py on every run.

Run the workflow tests with TRADING_RECORD_HISTORIES=1 to (re)record; commit the files only
when a change is meant to be incompatible, i.e. never for a workflow that is running
somewhere: guard behaviour changes with ``workflow.patched`` instead.
"""

import os
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

HISTORIES = Path(__file__).resolve().parent.parent / "histories"


async def keep_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Save the handle's (latest run) history as tests/histories/<name>.json when asked to."""
    if not os.environ.get("TRADING_RECORD_HISTORIES"):
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json())
