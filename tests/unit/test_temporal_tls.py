"""The Temporal connection's TLS settings: files become a TLSConfig; an API key forces TLS."""

from pathlib import Path

from pydantic import SecretStr
from temporalio.client import TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter

from starter.runtime.codec import EncryptionCodec
from starter.runtime.settings import Settings
from starter.runtime.temporal_client import data_converter, tls_config


def test_tls_config_reads_ca_client_pair_and_server_name_from_files(tmp_path: Path) -> None:
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for name, path in files.items():
        path.write_bytes(f"-----{name}-----".encode())
    settings = Settings(
        _env_file=None,
        temporal_tls=True,
        temporal_tls_server_ca=files["ca"],
        temporal_tls_client_cert=files["cert"],
        temporal_tls_client_key=files["key"],
        temporal_tls_server_name="temporal.internal",
    )
    tls = tls_config(settings)
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == b"-----ca-----"
    assert tls.client_cert == b"-----cert-----"
    assert tls.client_private_key == b"-----key-----"
    assert tls.domain == "temporal.internal"


def test_an_api_key_implies_tls_even_when_tls_is_not_asked_for() -> None:
    settings = Settings(_env_file=None, temporal_api_key=SecretStr("cloud-key"))
    tls = tls_config(settings)
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert is None


def test_no_tls_and_no_api_key_means_plaintext() -> None:
    assert tls_config(Settings(_env_file=None)) is False


def test_payload_keys_turn_on_the_encryption_codec() -> None:
    plain = Settings(_env_file=None)
    assert data_converter(plain) is pydantic_data_converter
    keyed = Settings(_env_file=None, payload_keys=SecretStr("k1:" + "A" * 43 + "="))
    converter = data_converter(keyed)
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.payload_converter_class is pydantic_data_converter.payload_converter_class
