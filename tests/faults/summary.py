"""Print the fault suite's figures (written by tests/faults/conftest.py) as a Rich table.

Usage: ``python -m tests.faults.summary [path]``; the default path is ``.data/faults-summary.json``
or ``$TRADING_FAULTS_SUMMARY``.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

DEFAULT = Path(__file__).resolve().parents[2] / ".data" / "faults-summary.json"
# Every scenario reports these; anything else it measured goes to the "measured" column.
STANDARD = {
    "scenario",
    "outcome",
    "sessions",
    "sessions_lost",
    "duplicated_effects",
    "unhandled_errors",
    "seconds",
}


def measured(row: dict[str, Any]) -> str:
    """A scenario's own figures (seconds to wind down, re-flattened fills...), as k=v."""
    return ", ".join(f"{key}={value}" for key, value in row.items() if key not in STANDARD)


def render(data: dict[str, Any]) -> Table:
    scenarios: list[dict[str, Any]] = data["scenarios"]
    table = Table(title=f"Fault suite, {data['generated_at'][:19]} UTC")
    columns = ("scenario", "outcome", "sessions", "lost", "duplicated", "errors", "seconds")
    for column in (*columns, "measured"):
        table.add_column(
            column,
            justify="left" if column in ("scenario", "measured") else "right",
            overflow="fold",
        )
    for row in scenarios:
        outcome = row.get("outcome", "?")
        style = "green" if outcome == "passed" else "red"
        table.add_row(
            row["scenario"],
            f"[{style}]{outcome}[/]",
            str(row["sessions"]),
            str(row["sessions_lost"]),
            str(row["duplicated_effects"]),
            str(row["unhandled_errors"]),
            str(row.get("seconds", "")),
            measured(row),
        )
    passed = sum(1 for row in scenarios if row.get("outcome") == "passed")
    table.caption = (
        f"{passed}/{len(scenarios)} scenarios passed; "
        f"{sum(r['sessions_lost'] for r in scenarios)} sessions lost, "
        f"{sum(r['duplicated_effects'] for r in scenarios)} duplicated effects, "
        f"{sum(r['unhandled_errors'] for r in scenarios)} unhandled errors"
    )
    return table


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path(os.environ.get("TRADING_FAULTS_SUMMARY") or DEFAULT)
    console = Console()
    if not path.exists():
        console.print(f"[red]no fault summary at {path}: run `make faults` first[/]")
        return 1
    data = json.loads(path.read_text())
    console.print(render(data))
    return 0 if all(r.get("outcome") == "passed" for r in data["scenarios"]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
