"""Schemathesis against the API's own OpenAPI spec: hostile input never causes a 5xx.

Bounded to a few examples per operation so it fits CI; authentication is tested on its own
(test_auth.py), so this app runs with it off and every generated request reaches validation.
"""

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from starlette.testclient import TestClient

from starter.api.app import create_app
from starter.runtime.settings import Settings
from tests.integration.hostile import assert_error

# Streams never end, and these answer 503 by design when their dependency is missing.
SKIPPED = {"/notifications/stream", "/health/ready", "/codec/encode", "/codec/decode"}
EXAMPLES_PER_OPERATION = 15

SCHEMA = schemathesis.openapi.from_dict(create_app(Settings(auth_enabled=False)).openapi())
OPERATIONS = sorted(
    result.ok().label
    for result in SCHEMA.get_all_operations()
    if isinstance(result, Ok) and result.ok().path not in SKIPPED
)


@pytest.fixture(scope="module")
def fuzz_client(dev_server: str, database_url: str) -> Iterator[TestClient]:
    app = create_app(
        Settings(
            temporal_address=dev_server,
            database_url=database_url,
            temporal_task_queue=f"fuzz-{uuid.uuid4()}",
            auth_enabled=False,
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        known = {hook["id"] for hook in client.get("/webhooks").json()}
        yield client
        # Generated subscriptions would receive every later test's notifications: remove them.
        for hook in client.get("/webhooks").json():
            if hook["id"] not in known:
                client.delete(f"/webhooks/{hook['id']}")


@pytest.mark.parametrize("label", OPERATIONS)
def test_generated_requests_never_cause_a_server_error(fuzz_client: TestClient, label: str) -> None:
    operation = SCHEMA.find_operation_by_label(label)
    assert operation is not None

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def send(case: schemathesis.Case[Any]) -> None:
        request = case.as_transport_kwargs(base_url=str(fuzz_client.base_url))
        response = fuzz_client.request(**request)
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
        if response.status_code >= 400:
            assert_error(response, response.status_code)  # refusals use the one error shape

    send()
