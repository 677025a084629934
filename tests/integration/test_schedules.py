"""Housekeeping schedules on a real dev server: created once, kept up to date, never doubled."""

from collections.abc import AsyncIterator

import pytest
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
    ScheduleOverlapPolicy,
)

from domain.housekeeping import HousekeepingInput
from starter.runtime.schedules import RETENTION_CATCHUP, ensure_schedules, retention_schedule_id
from starter.runtime.settings import Settings
from tests.integration.polling import eventually


@pytest.fixture
async def schedule(dev_client: Client, settings: Settings) -> AsyncIterator[ScheduleHandle]:
    handle = dev_client.get_schedule_handle(retention_schedule_id(settings))
    yield handle
    await handle.delete()


async def test_two_start_ups_leave_exactly_one_schedule_following_the_settings(
    dev_client: Client, settings: Settings, schedule: ScheduleHandle
) -> None:
    await ensure_schedules(dev_client, settings)
    await schedule.pause(note="operator pause")
    changed = settings.model_copy(update={"retention_days": 45})

    await ensure_schedules(dev_client, changed)

    async def listed() -> list[str] | None:
        ids = [s.id async for s in await dev_client.list_schedules()]
        ours = [i for i in ids if i == schedule.id]
        return ours or None

    assert await eventually(listed) == [schedule.id]
    description = await schedule.describe()
    policy = description.schedule.policy
    assert policy.overlap == ScheduleOverlapPolicy.SKIP
    assert policy.catchup_window == RETENTION_CATCHUP
    assert description.schedule.state.paused  # an update keeps what an operator did
    action = description.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "Housekeeping"
    assert action.task_queue == settings.temporal_task_queue
    [arg] = await dev_client.data_converter.decode(action.args, [HousekeepingInput])
    assert arg.retention_days == 45
