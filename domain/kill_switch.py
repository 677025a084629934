"""The emergency kill switch (MiFID II RTS 6 Art. 12): its scope and its typed messages.

One call ends every open session of a scope: an account, an algorithm, or all of them. The
scope stays locked (new sessions in it are refused) until an admin re-arms it.
"""

from enum import StrEnum

from pydantic import BaseModel, Field

# The end reason a session killed by the switch records, as its actor's request says.
KILL_SWITCH_ACTOR_PREFIX = "kill-switch"


class ScopeKind(StrEnum):
    ACCOUNT = "account"
    ALGORITHM = "algorithm"
    ALL = "all"


class KillScope(BaseModel):
    """What a kill switch covers: ``kind`` and, unless it is ``all``, the id it names."""

    kind: ScopeKind
    value: str | None = None

    def covers(self, account_id: str, algorithm_id: str) -> bool:
        """Whether a session of this account and algorithm falls in the scope."""
        if self.kind is ScopeKind.ALL:
            return True
        return self.value == (account_id if self.kind is ScopeKind.ACCOUNT else algorithm_id)

    def describe(self) -> str:
        return "all sessions" if self.kind is ScopeKind.ALL else f"{self.kind} {self.value}"


def kill_switch_workflow_id(kill_switch_id: int) -> str:
    """The fan-out workflow of one kill switch: a second press reruns the same one."""
    return f"kill-switch-{kill_switch_id}"


def kill_switch_audit_id(kill_switch_id: int) -> str:
    """What the audit trail files a kill switch's own events under (in place of a session)."""
    return f"kill-switch-{kill_switch_id}"


class KillSwitchInput(BaseModel):
    """The fan-out: tell every session the switch closed to terminate, with reason and actor."""

    kill_switch_id: int
    reason: str
    actor: str
    # The end reason its sessions record (domain.status.EndReason); None: TERMINATED.
    end_reason: str | None = None


class KillSwitchResult(BaseModel):
    """What one pass of the fan-out did."""

    signalled: int = 0
    failed: int = 0
    failures: dict[str, str] = Field(default_factory=dict)  # session id -> why (first 20)
