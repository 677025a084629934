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


class InvalidRequestError(ServiceError):
    status_code = 422
    code = "validation_error"


class UnavailableError(ServiceError):
    status_code = 503
    code = "unavailable"
