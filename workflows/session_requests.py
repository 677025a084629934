"""What the session workflow does with an operator's request, whichever way it came.

Signals cannot be refused: one that changes nothing is audited as such, and one whose write
gives up is alerted and audited rather than failing the workflow. Updates are validated
first and answer the caller with the error. Writes take turns under one lock, so their
audit events keep the order the requests arrived in.
"""

import asyncio
import contextlib
from collections.abc import Awaitable

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.session_messages import (
        SYSTEM_ACTOR,
        GateChangeInput,
        SessionSpec,
        SessionState,
        TerminateInput,
    )
    from workflows import session_calls as calls
    from workflows.session_calls import CALL_FAILED


def invalid(message: str) -> ApplicationError:
    """An update's refusal: the caller sees the message, and history keeps no trace of it."""
    return ApplicationError(message, type="InvalidUpdate", non_retryable=True)


class OperatorRequests:
    """The session's requests: termination, gate changes and the writes behind updates."""

    def __init__(self, spec: SessionSpec, state: SessionState) -> None:
        self._spec = spec
        self._state = state
        self.lock = asyncio.Lock()

    def refuse_if_ending(self, consequence: str) -> None:
        if self._state.end_reason is not None or self._state.pending_termination is not None:
            raise invalid(f"the session is ending; {consequence}")

    async def receive_termination(self, request: TerminateInput) -> None:
        """The first request wins (the loop audits it and ends the session); a later one
        changes nothing, but the audit trail shows it."""
        state = self._state
        if state.pending_termination is None and state.end_reason is None:
            state.pending_termination = request
            return
        async with self.lock:
            await calls.audit_request(
                self._spec,
                "session.termination_request_ignored",
                request.actor,
                request.reason,
                {"why": "the session is already ending"},
            )

    async def gate_signal(self, open_: bool, request: GateChangeInput) -> None:
        state = self._state
        if state.end_reason is not None or state.paused != open_:
            why = "the session is ending" if state.end_reason else "the gate is already so"
            async with self.lock:
                await calls.audit_request(
                    self._spec,
                    "gate.request_ignored",
                    request.actor,
                    request.reason,
                    {"open": str(open_).lower(), "why": why},
                )
            return
        with contextlib.suppress(ApplicationError):  # alerted and audited already
            await self.change_gate(open_, request, "resume" if open_ else "pause")

    async def change_gate(self, open_: bool, request: GateChangeInput, handler: str) -> None:
        state = self._state
        # The live state changes at once; the store follows in request order under the lock.
        state.paused = not open_
        state.gate_changes += 1
        change_id = str(state.gate_changes)
        async with self.lock:
            try:
                await self.handler_call(
                    handler, request.actor, calls.set_gate(self._spec, open_, request, change_id)
                )
            except ApplicationError:
                state.paused = open_  # the store kept the gate as it was
                raise

    async def reopen_gate_after_unconfirmed_breach(self) -> None:
        request = GateChangeInput(actor=SYSTEM_ACTOR, reason="breach not confirmed by the check")
        with contextlib.suppress(ApplicationError):
            await self.change_gate(True, request, "reopen_gate")

    async def handler_call(self, handler: str, actor: str, call: Awaitable[None]) -> None:
        """A handler's activity; when it gives up, the caller hears the error and an
        operator is alerted, and the session goes on."""
        try:
            await call
        except CALL_FAILED as err:
            cause = str(err.cause or err)
            await calls.report_handler_failure(self._spec, handler, actor, cause)
            raise ApplicationError(
                f"{handler} failed: {cause}", type="HandlerFailed", non_retryable=True
            ) from err
