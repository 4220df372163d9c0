"""API fuzzing from the OpenAPI document (schemathesis): every operation, with generated
valid and invalid inputs, under an operator and an admin key; no response may be a 5xx."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.api.conftest import open_api


@pytest.fixture(scope="module")
def app_and_keys(tmp_path_factory, shared_engine):
    from tests.api.conftest import Api

    data_dir = tmp_path_factory.mktemp("schemathesis")
    services, client = open_api(data_dir, shared_engine, max_image_bytes=2_000_000)
    with client:
        api = Api(client, data_dir)
        yield client.app, {"operator": api.operator, "admin": api.admin, "auditor": api.auditor}
    services.close()


def fuzz(operation, keys: dict, failures: list[str], statuses: Counter[int]) -> None:
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case) -> None:
        for headers in keys.values():
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except AssertionError as error:  # collect every failing operation
                failures.append(f"{operation.label}: {error}")
                return

    run()


def test_no_operation_answers_5xx(app_and_keys) -> None:
    app, keys = app_and_keys
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        fuzz(operation, keys, failures, statuses)
    assert failures == []
    assert len(operations) >= 40 and sum(statuses.values()) >= 40 * 15
    assert statuses[200] + statuses[201] > 0 and statuses[400] > 0  # both kinds were tried
