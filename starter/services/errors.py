"""Refusals the service gives; the API turns each into one JSON error shape."""


class ServiceError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFoundError(ServiceError):
    status_code = 404
    code = "not_found"


class ConflictError(ServiceError):
    status_code = 409
    code = "conflict"


class WorkflowClosedError(ConflictError):
    """The session's row is open but its workflow has closed: it is not running."""

    code = "workflow_closed"


class InvalidRequestError(ServiceError):
    status_code = 422
    code = "validation_error"


class UnavailableError(ServiceError):
    status_code = 503
    code = "unavailable"


class UnauthorizedError(ServiceError):
    """No API key, or one that is unknown or revoked."""

    status_code = 401
    code = "unauthorized"


class ForbiddenError(ServiceError):
    """A valid key whose role or account does not allow this call."""

    status_code = 403
    code = "forbidden"


class LateFillRefusedError(ConflictError):
    """A fill after the session's trading ended that is not one of its orders' executions:
    ``unknown_order`` (no order named, or one the session never placed) or
    ``order_overfilled`` (more than the order's quantity)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message, field)
        self.code = code
