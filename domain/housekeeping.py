"""Typed input and result of the housekeeping workflow and its purge activity.

Every field added later gets a default, so schedules and histories recorded before it decode.
"""

from datetime import datetime

from pydantic import BaseModel, Field

HOUSEKEEPING_ACTOR = "housekeeping"
# Sessions per purge activity call: small enough that one call ends in seconds, so a run with
# a large backlog makes steady progress instead of one long transaction that could time out.
DEFAULT_PURGE_BATCH = 500


class HousekeepingResult(BaseModel):
    """Totals of one scheduled run, carried across continue-as-new."""

    cutoff: datetime
    batches: int = 0
    sessions_purged: int = 0
    fills_deleted: int = 0
    marks_deleted: int = 0
    positions_deleted: int = 0


class HousekeepingInput(BaseModel):
    """What one scheduled run does; a run carries its cutoff and totals across continue-as-new."""

    retention_days: int = Field(default=30, ge=1)
    batch_size: int = Field(default=DEFAULT_PURGE_BATCH, ge=1, le=10_000)
    cutoff: datetime | None = None
    carried: HousekeepingResult | None = None


class PurgeInput(BaseModel):
    """Purge the data of at most ``limit`` sessions that ended before ``cutoff``."""

    cutoff: datetime
    limit: int = Field(ge=1)


class PurgeResult(BaseModel):
    """Rows one purge call removed; fewer sessions than asked means nothing is left."""

    sessions_purged: int
    fills_deleted: int
    marks_deleted: int
    positions_deleted: int
