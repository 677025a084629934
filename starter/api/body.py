"""How request bodies become JSON: strictly, and only after the caller is authenticated.

FastAPI reads a JSON body before it solves any dependency, so a malformed body used to be
answered 400 before the API key was checked, and ``json.loads`` took duplicate keys (the last
one won), ``NaN`` and bodies nested thousands deep. Every router uses :class:`StrictJsonRoute`:
its request parses with :func:`loads_strict`, and a body that does not parse becomes the
:data:`UNPARSABLE` marker instead of an exception, its :class:`BodyError` kept in the request
scope. FastAPI then solves the dependencies (authentication first: a 401 wins) and fails to
validate the marker; the API's validation handler answers ``400 malformed_json`` from the
error (:func:`body_error`).
"""

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, Final, NoReturn

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection

# Deep enough for every body we take (the codec's payloads are 4 levels), shallow enough that
# nothing walking a body recurses far.
MAX_JSON_DEPTH = 32


class BodyError(ValueError):
    """A body that is not one unambiguous JSON document; ``field`` names a duplicate key."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# Stands in for a body that did not parse. A bare ``object()`` on purpose: pydantic refuses it
# for every body type, even models whose fields all have defaults (FastAPI validates bodies
# with ``from_attributes``, which takes any object with a ``__dict__``).
UNPARSABLE: Final = object()
_SCOPE_KEY = "starter.body_error"


def body_error(connection: HTTPConnection) -> BodyError | None:
    """Why this request's JSON body did not parse; None when it did (or was not read)."""
    error: BodyError | None = connection.scope.get(_SCOPE_KEY)
    return error


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise BodyError(f"duplicate key {key!r} in the JSON body", field=key)
            seen.add(key)
    return result


def _no_constant(name: str) -> NoReturn:
    raise BodyError(f"{name} is not a JSON number")


def _check_tree(document: Any) -> None:
    """Refuse nesting past ``MAX_JSON_DEPTH`` and lone surrogates (``"\\ud800"``) anywhere."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BodyError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, value in items:
                if isinstance(key, str):
                    _check_unicode(key)
                pending.append((value, depth + 1))
        elif isinstance(node, str):
            _check_unicode(node)


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise BodyError("JSON text holds an unpaired surrogate escape") from err


def loads_strict(raw: bytes) -> Any:
    """One JSON document from UTF-8 bytes, or :class:`BodyError` saying why not.

    Refuses: other encodings, duplicate keys, ``NaN``/``Infinity``, nesting past
    ``MAX_JSON_DEPTH``, unpaired surrogates. Numbers with a point or exponent parse to
    ``Decimal``, so money sent as a JSON number is never rounded through a float.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BodyError("request body is not UTF-8") from err
    try:
        document = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=Decimal,
            parse_constant=_no_constant,
        )
    except RecursionError as err:
        raise BodyError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from err
    except json.JSONDecodeError as err:
        raise BodyError(f"request body is not valid JSON: {err.msg} at {err.pos}") from err
    except ValueError as err:  # an integer past Python's digit limit, say
        if isinstance(err, BodyError):
            raise
        raise BodyError("request body is not valid JSON: a number is too long") from err
    if not isinstance(document, dict):
        raise BodyError("request body must be a JSON object")
    _check_tree(document)
    return document


class StrictJsonRequest(Request):
    """A request whose JSON body parses with :func:`loads_strict`, never raising."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = loads_strict(await self.body())
            except BodyError as err:
                self.scope[_SCOPE_KEY] = err
                self._json = UNPARSABLE
        return self._json


class StrictJsonRoute(APIRoute):
    """The route class of every router: bodies parse strictly, after authentication."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler
