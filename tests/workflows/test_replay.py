"""Determinism guard: every recorded history must replay on the current workflow code."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.workflows.histories import HISTORIES
from workflows.housekeeping import HousekeepingWorkflow
from workflows.session import TradingSessionWorkflow
from workflows.sweep import FleetSweepWorkflow

RECORDED = sorted(HISTORIES.glob("*.json"))


def test_histories_have_been_recorded() -> None:
    assert len(RECORDED) >= 5, "record histories with TRADING_RECORD_HISTORIES=1"


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_recorded_history_replays_deterministically(path: Path) -> None:
    replayer = Replayer(
        workflows=[TradingSessionWorkflow, FleetSweepWorkflow, HousekeepingWorkflow],
        data_converter=pydantic_data_converter,
    )

    result = await replayer.replay_workflow(
        WorkflowHistory.from_json(path.stem, path.read_text()), raise_on_replay_failure=False
    )

    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
