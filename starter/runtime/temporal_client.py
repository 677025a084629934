"""The one way every process connects to Temporal: same converter, same TLS and API key."""

import dataclasses
from pathlib import Path

from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime

from starter.runtime.codec import codec_from
from starter.runtime.settings import Settings
from starter.runtime.telemetry import tracing_interceptors


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS (and mTLS when a client pair is given); API keys always travel over TLS."""
    if not settings.temporal_tls and settings.temporal_api_key is None:
        return False
    return TLSConfig(
        server_root_ca_cert=_read(settings.temporal_tls_server_ca),
        client_cert=_read(settings.temporal_tls_client_cert),
        client_private_key=_read(settings.temporal_tls_client_key),
        domain=settings.temporal_tls_server_name,
    )


def data_converter(settings: Settings) -> DataConverter:
    """The pydantic converter, encrypting payloads when ``TRADING_PAYLOAD_KEYS`` is set."""
    keys = settings.payload_keys
    codec = codec_from(keys.get_secret_value() if keys else None)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client with the service's converter, TLS, API key and (when enabled) tracing."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.resolved_temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        tls=tls_config(settings),
        api_key=api_key,
        interceptors=tracing_interceptors(settings),
        runtime=runtime,
    )
