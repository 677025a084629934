"""Who may call what: API-key authentication and the role checks every endpoint depends on.

Keys arrive as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. A missing, unknown
or revoked key is a 401; a role or account that may not make the call is a 403.
"""

from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from domain.roles import Role
from starter.api.deps import KeysDep, SessionsDep, SettingsDep
from starter.api.schemas import SessionIdPath
from starter.services.errors import ForbiddenError, UnauthorizedError
from starter.services.principals import ANONYMOUS_OPERATOR, Principal


class Permission(StrEnum):
    START = "sessions.start"
    READ = "sessions.read"
    TERMINATE = "sessions.terminate"
    CHANGE = "sessions.change"  # extend, loss limit, pause/resume, retry cleanup
    GATE = "sessions.gate"
    INGEST = "trades.ingest"  # fills, marks, orders
    READ_ORDERS = "orders.read"
    OPERATE = "operations"  # jobs, notifications, webhooks, payload codec
    MANAGE_KEYS = "keys.manage"
    MARKET_DATA = "marks.market"  # market prices per symbol, for every session holding them
    KILL = "risk.kill"  # press the kill switch
    REARM = "risk.rearm"  # re-arm it: unlock its scope
    READ_RISK = "risk.read"  # kill switches, account risk figures
    READ_AUDIT = "audit.read"  # a session's audit trail; the whole trail's export
    READ_ALERTS = "alerts.read"
    ACK_ALERTS = "alerts.acknowledge"
    SET_LIMITS = "risk.limits"  # an account's limits across its sessions


_T, _S, _O, _A = Role.TRADER, Role.SERVICE, Role.OPERATOR, Role.ADMIN
ROLES: Mapping[Permission, frozenset[Role]] = {
    Permission.START: frozenset({_T, _O, _A}),
    Permission.READ: frozenset({_T, _O, _A}),
    Permission.TERMINATE: frozenset({_T, _O, _A}),
    Permission.CHANGE: frozenset({_O, _A}),
    Permission.GATE: frozenset({_T, _S, _O, _A}),
    Permission.INGEST: frozenset({_S, _O, _A}),
    Permission.READ_ORDERS: frozenset({_T, _S, _O, _A}),
    Permission.OPERATE: frozenset({_O, _A}),
    Permission.MANAGE_KEYS: frozenset({_A}),
    Permission.MARKET_DATA: frozenset({Role.MARKET_DATA, _A}),
    Permission.KILL: frozenset({Role.RISK, _A}),
    Permission.REARM: frozenset({_A}),
    Permission.READ_RISK: frozenset({Role.RISK, _O, _A}),
    Permission.READ_AUDIT: frozenset({Role.AUDITOR, _T, _O, _A}),  # a trader: own sessions
    Permission.READ_ALERTS: frozenset({_O, _A}),
    Permission.ACK_ALERTS: frozenset({_O, _A}),
    Permission.SET_LIMITS: frozenset({Role.RISK, _A}),
}

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")


async def authenticate(
    settings: SettingsDep,
    keys: KeysDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> Principal:
    """The caller's principal; 401 without a valid key (unless auth is switched off).

    A key verified in the last ``TRADING_API_KEY_CACHE_SECONDS`` is not looked up again.
    """
    if not settings.auth_enabled:
        return ANONYMOUS_OPERATOR
    api_key = bearer.credentials if bearer is not None else header_key
    if not api_key:
        raise UnauthorizedError("an API key is required (Authorization: Bearer or X-API-Key)")
    principal = await keys.authenticate(api_key)
    if principal is None:
        raise UnauthorizedError("the API key is unknown or revoked")
    return principal


Authenticated = Annotated[Principal, Depends(authenticate)]


def check_role(principal: Principal, permission: Permission) -> None:
    if principal.role not in ROLES[permission]:
        raise ForbiddenError(f"role {principal.role} may not do {permission}")


def check_account(principal: Principal, account_id: str) -> None:
    """A trader acts on its own account only; every other role on all of them."""
    if principal.role is Role.TRADER and principal.account_id != account_id:
        raise ForbiddenError("this key may act only on its own account", field="account_id")


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency: an authenticated caller whose role has ``permission``."""

    async def dependency(principal: Authenticated) -> Principal:
        check_role(principal, permission)
        return principal

    return dependency


def require_for_session(
    permission: Permission | Mapping[str, Permission],
) -> Callable[..., Awaitable[Principal]]:
    """Like :func:`require`, plus the trader's account check on the ``{session_id}`` path.

    A mapping gives the permission per HTTP method (GET reads orders, POST books one).
    """

    async def dependency(
        request: Request, session_id: SessionIdPath, principal: Authenticated, sessions: SessionsDep
    ) -> Principal:
        needed = permission if isinstance(permission, Permission) else permission[request.method]
        check_role(principal, needed)
        if principal.role is Role.TRADER:
            account_id = await sessions.account_of(session_id)
            if account_id is None:
                return principal  # the endpoint answers 404
            check_account(principal, account_id)
        return principal

    return dependency


StartSession = Annotated[Principal, Depends(require(Permission.START))]
ListSessions = Annotated[Principal, Depends(require(Permission.READ))]
ReadSession = Annotated[Principal, Depends(require_for_session(Permission.READ))]
TerminateSession = Annotated[Principal, Depends(require_for_session(Permission.TERMINATE))]
ChangeSession = Annotated[Principal, Depends(require_for_session(Permission.CHANGE))]
ReadGate = Annotated[Principal, Depends(require_for_session(Permission.GATE))]
IngestTrades = Annotated[Principal, Depends(require_for_session(Permission.INGEST))]
Operate = Annotated[Principal, Depends(require(Permission.OPERATE))]
ManageKeys = Annotated[Principal, Depends(require(Permission.MANAGE_KEYS))]
MarketData = Annotated[Principal, Depends(require(Permission.MARKET_DATA))]
Kill = Annotated[Principal, Depends(require(Permission.KILL))]
Rearm = Annotated[Principal, Depends(require(Permission.REARM))]
ReadRisk = Annotated[Principal, Depends(require(Permission.READ_RISK))]
ReadSessionAudit = Annotated[Principal, Depends(require_for_session(Permission.READ_AUDIT))]
ReadAlerts = Annotated[Principal, Depends(require(Permission.READ_ALERTS))]
AckAlerts = Annotated[Principal, Depends(require(Permission.ACK_ALERTS))]


async def _export_audit(principal: Authenticated) -> Principal:
    """The whole trail's export: auditors, operators and admins (not a trader)."""
    check_role(principal, Permission.READ_AUDIT)
    if principal.role is Role.TRADER:
        raise ForbiddenError("a trader reads the audit of its own sessions only")
    return principal


ExportAudit = Annotated[Principal, Depends(_export_audit)]
SetLimits = Annotated[Principal, Depends(require(Permission.SET_LIMITS))]
