"""Encrypted payloads on a real dev server: unreadable in history, readable via /codec."""

import base64
import os
import uuid

import httpx
import pytest
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client

from starter.runtime.settings import Settings
from starter.runtime.temporal_client import connect

OLD_KEY = base64.b64encode(os.urandom(32)).decode()
NEW_KEY = base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def settings(dev_server: str, database_url: str) -> Settings:
    """The ``api`` fixture's app encrypts with "new" and still reads "old"."""
    return Settings(
        temporal_address=dev_server,
        database_url=database_url,
        temporal_task_queue=f"test-{uuid.uuid4()}",
        payload_keys=SecretStr(f"new:{NEW_KEY},old:{OLD_KEY}"),
    )


async def _start_encrypted(settings: Settings, keys: str, marker: str) -> str:
    """Start a workflow (no worker needed) whose input holds ``marker``; return its id."""
    client = await connect(settings.model_copy(update={"payload_keys": SecretStr(keys)}))
    workflow_id = f"codec-{uuid.uuid4().hex}"
    await client.start_workflow(
        "CodecProbe", {"session_id": marker}, id=workflow_id, task_queue=f"none-{uuid.uuid4()}"
    )
    return workflow_id


async def _raw_input(dev_client: Client, workflow_id: str) -> Payloads:
    """The start event's input exactly as the server stores it (no codec involved)."""
    handle = dev_client.get_workflow_handle(workflow_id)
    history = await handle.fetch_history()
    await handle.terminate("test done")
    return history.events[0].workflow_execution_started_event_attributes.input


async def test_payloads_are_ciphertext_in_history_and_plain_through_the_codec_server(
    api: httpx.AsyncClient, settings: Settings, dev_client: Client
) -> None:
    marker = f"secret-session-{uuid.uuid4().hex}"
    workflow_id = await _start_encrypted(settings, f"new:{NEW_KEY},old:{OLD_KEY}", marker)
    stored = await _raw_input(dev_client, workflow_id)
    assert stored.payloads[0].metadata["encoding"] == b"binary/encrypted"
    assert stored.payloads[0].metadata["encryption-key-id"] == b"new"
    assert marker.encode() not in stored.SerializeToString()

    response = await api.post("/codec/decode", json=json_format.MessageToDict(stored))
    assert response.status_code == 200
    decoded = json_format.ParseDict(response.json(), Payloads())
    assert marker.encode() in decoded.payloads[0].data
    assert decoded.payloads[0].metadata["encoding"] == b"json/plain"

    encoded = await api.post("/codec/encode", json=response.json())
    assert marker not in encoded.text
    assert encoded.json()["payloads"][0]["metadata"]["encryption-key-id"] == "bmV3"  # "new"


async def test_payloads_written_with_the_old_key_decode_after_rotation(
    api: httpx.AsyncClient, settings: Settings, dev_client: Client
) -> None:
    marker = f"before-rotation-{uuid.uuid4().hex}"
    workflow_id = await _start_encrypted(settings, f"old:{OLD_KEY}", marker)
    stored = await _raw_input(dev_client, workflow_id)
    assert stored.payloads[0].metadata["encryption-key-id"] == b"old"
    response = await api.post("/codec/decode", json=json_format.MessageToDict(stored))
    assert response.status_code == 200
    assert marker in base64.b64decode(response.json()["payloads"][0]["data"]).decode()


async def test_codec_server_allows_the_web_ui_origin_and_refuses_callers_without_a_key(
    api: httpx.AsyncClient,
) -> None:
    preflight = await api.options(
        "/codec/decode",
        headers={
            "Origin": "http://localhost:8233",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:8233"
    anonymous = await api.post(
        "/codec/decode", json={"payloads": []}, headers={"Authorization": ""}
    )
    assert anonymous.status_code == 401
    garbage = await api.post("/codec/decode", json={"payloads": [{"bogus": 1}]})
    assert garbage.status_code == 422


async def test_codec_bodies_with_duplicate_keys_or_deep_nesting_are_a_400(
    api: httpx.AsyncClient,
) -> None:
    headers = {"content-type": "application/json"}
    duplicate = b'{"payloads": [], "payloads": [{"data": "e30="}]}'

    twice = await api.post("/codec/decode", content=duplicate, headers=headers)
    deep = await api.post("/codec/encode", content=b"[" * 5000, headers=headers)

    assert twice.status_code == 400
    assert twice.json()["error"] == {
        "code": "malformed_json",
        "message": "duplicate key 'payloads' in the JSON body",
        "field": "payloads",
    }
    assert deep.status_code == 400
    assert deep.json()["error"]["code"] == "malformed_json"
