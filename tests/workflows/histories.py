"""Recorded workflow histories: written on request, replayed by test_replay.py on every run.

Run the workflow tests with TRADING_RECORD_HISTORIES=1 to record the histories not on disk
yet. Every change to the workflows must keep them replaying: a change that breaks one changes
what running workflows do. No deployment runs older code yet, so a deliberate change of the
workflow's shape deletes the histories and records them anew (rather than keeping
``workflow.patched`` branches for runs that do not exist); once one does, guard changes with
``workflow.patched`` and record the new behaviour under a new name.
"""

import os
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

HISTORIES = Path(__file__).resolve().parent.parent / "histories"


async def keep_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Save the (latest run) history as tests/histories/<name>.json when asked, if not there."""
    path = HISTORIES / f"{name}.json"
    if not os.environ.get("TRADING_RECORD_HISTORIES") or path.exists():
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    path.write_text(history.to_json())
