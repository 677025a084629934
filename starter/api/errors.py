"""Every error leaves the API in one JSON shape: ``{"error": {code, message, field}}``.

Services raise :class:`~starter.services.errors.ServiceError`; Starlette refuses routes,
methods and sizes by itself; FastAPI refuses bodies; PostgreSQL refuses values. Each gets
its status and a code here, and nothing about our internals leaks.
"""

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.text import clean_text
from starter.api.body import body_error
from starter.api.schemas import ErrorResponse
from starter.services.errors import ServiceError

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 413, 422, 503)
}
# The error code of each status Starlette answers by itself (routing, methods, limits).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _error(
    status_code: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    # Messages and fields can quote the caller's input (an unknown key): make them printable.
    shown = None if field is None else clean_text(field, 200)
    body = {"error": {"code": code, "message": clean_text(message, 1000), "field": shown}}
    return JSONResponse(status_code=status_code, content=body, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every refusal and failure in the one error shape."""

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status_code, exc.code, exc.message, exc.field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown routes (404), wrong methods (405, with Allow), FastAPI's own refusals.
        code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return _error(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        unparsable = body_error(request)  # refused by starter.api.body, after authentication
        if unparsable is not None:
            return _error(400, "malformed_json", unparsable.message, unparsable.field)
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            return _error(400, "malformed_json", "request body is not valid JSON")
        location = [str(part) for part in first["loc"] if part not in ("body", "query", "path")]
        field = ".".join(location) or None
        message = first["msg"] if field is None else f"{field}: {first['msg']}"
        return _error(422, "validation_error", message, field)

    @app.exception_handler(DBAPIError)
    async def unstorable_value(_: Request, exc: DBAPIError) -> JSONResponse:
        # SQLSTATE class 22 is PostgreSQL refusing a value (a NUL byte in text, say): the
        # caller's input, not our fault. The transaction rolled back, so nothing was written.
        if str(getattr(exc.orig, "sqlstate", "")).startswith("22"):
            return _error(
                422,
                "validation_error",
                "a value cannot be stored: text must not "
                "contain NUL characters and numbers must fit their columns",
            )
        raise exc

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the exception; the caller learns nothing about our internals.
        return _error(500, "internal_error", "internal error")
