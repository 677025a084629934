"""Recorded workflow histories: written on request, replayed by test_replay.py on every run.

Run the workflow tests with TRADING_RECORD_HISTORIES=1 to record the histories not on disk
yet. A recorded file is never overwritten: it is what workflows still running somewhere look
like, so it must keep replaying. Guard behaviour changes with ``workflow.patched`` and record
the new behaviour under a new name; delete a file only when no such workflow can be left.
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
