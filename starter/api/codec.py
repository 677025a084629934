"""Temporal's remote codec protocol, so operators read encrypted payloads in the Web UI/CLI.

``POST /codec/encode`` and ``/codec/decode`` take and return ``{"payloads": [...]}`` in the
protobuf JSON form (base64 metadata values and data). Operators and admins only.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from starter.api.auth import Operate
from starter.api.body import StrictJsonRoute
from starter.runtime.codec import CodecError, EncryptionCodec, codec_from
from starter.runtime.settings import Settings
from starter.services.errors import InvalidRequestError, UnavailableError

router = APIRouter(prefix="/codec", tags=["codec"], route_class=StrictJsonRoute)
MAX_PAYLOADS = 1000

PayloadsBody = Annotated[
    dict[str, Any],
    Body(
        description="Temporal Payloads as protobuf JSON",
        examples=[{"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "e30="}]}],
    ),
]


def _codec(request: Request) -> EncryptionCodec:
    """The app's codec, built once from the settings; 503 when no keys are configured."""
    codec: EncryptionCodec | None = getattr(request.app.state, "codec", None)
    if codec is None:
        settings: Settings = request.app.state.settings
        keys = settings.payload_keys
        codec = codec_from(keys.get_secret_value() if keys else None)
        if codec is None:
            raise UnavailableError("payload encryption is not configured (TRADING_PAYLOAD_KEYS)")
        request.app.state.codec = codec
    return codec


CodecDep = Annotated[EncryptionCodec, Depends(_codec)]


def _parse(body: dict[str, Any]) -> Payloads:
    try:
        payloads = json_format.ParseDict(body, Payloads())
    except json_format.ParseError as err:
        raise InvalidRequestError(f"not a Temporal payloads document: {err}") from err
    if len(payloads.payloads) > MAX_PAYLOADS:
        raise InvalidRequestError(f"at most {MAX_PAYLOADS} payloads per call", field="payloads")
    return payloads


def _reply(payloads: list[Any]) -> JSONResponse:
    return JSONResponse(json_format.MessageToDict(Payloads(payloads=payloads)))


@router.post("/encode")
async def encode(_: Operate, body: PayloadsBody, codec: CodecDep) -> JSONResponse:
    """Encrypt payloads with the newest key."""
    return _reply(await codec.encode(_parse(body).payloads))


@router.post("/decode")
async def decode(_: Operate, body: PayloadsBody, codec: CodecDep) -> JSONResponse:
    """Decrypt payloads with the key each one names; others come back unchanged."""
    try:
        return _reply(await codec.decode(_parse(body).payloads))
    except CodecError as err:
        raise InvalidRequestError(str(err), field="payloads") from err
