from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from faceledger.api import create_app
from faceledger.config import Settings
from faceledger.governance.policies import OPERATIONS
from faceledger.service.context import Services
from faceledger.vision import FaceEngine
from tests import databases
from tests.conftest import LFW, require


def lfw_people(count: int) -> list[str]:
    """``count`` people with at least two LFW images, spread over the alphabet."""
    images = require(LFW / "images")
    names = sorted(p.name for p in images.iterdir() if (p / f"{p.name}_0002.jpg").exists())
    step = len(names) // count
    return names[::step][:count]


def lfw_image(name: str, number: int) -> Path:
    """An LFW photo; the test skips, saying why, when the data is absent."""
    return require(LFW / "images") / name / f"{name}_{number:04d}.jpg"


# Most API tests exercise search mechanics (thresholds down to 0, enrolment without consent
# records), so their operator key acts under this permissive policy; the shipped policies are
# tested in tests/service/test_policies.py and tests/api/test_governance.py.
TEST_POLICY = {
    "name": "test-open",
    "description": "tests of search mechanics: no floor, no consent requirement",
    # Everything but a live watch, which a policy may only allow with a legal basis and review.
    "operations": [op for op in OPERATIONS if op != "watch_stream"],
    "min_threshold": 0,
    "max_results": 4096,
}


class Api:
    """A TestClient with keys for each role."""

    def __init__(self, client: TestClient, data_dir: Path) -> None:
        self.client = client
        self.admin = {"Authorization": "Bearer " + (data_dir / "admin-key.txt").read_text().strip()}
        if client.get("/v1/policies/test-open", headers=self.admin).status_code == 404:
            created = client.post("/v1/policies", json=TEST_POLICY, headers=self.admin)
            assert created.status_code == 201, created.text
        self.operator = self.key("operator", policy="test-open")
        self.auditor = self.key("auditor")

    def key(self, role: str, policy: str | None = None) -> dict[str, str]:
        response = self.client.post(
            "/v1/keys",
            json={"role": role, "name": f"test {role}", "policy": policy},
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def index(self, collection: str, path: Path, external_id: str, **fields):
        with path.open("rb") as handle:
            return self.client.post(
                f"/v1/collections/{collection}/faces",
                files={"image": handle},
                data={"external_image_id": external_id, **fields},
                headers=self.operator,
            )

    def search(self, collection: str, path: Path, **fields):
        with path.open("rb") as handle:
            return self.client.post(
                f"/v1/collections/{collection}/search",
                files={"image": handle},
                data={k: str(v) for k, v in fields.items()},
                headers=self.operator,
            )


@pytest.fixture(scope="session")
def shared_engine() -> FaceEngine:
    return FaceEngine.for_model(Settings().face_model, cnn_fallback=True)


def open_api(data_dir: Path, engine: FaceEngine, **settings: object):
    # Many tests are refused on purpose; the refusal throttle has its own tests.
    settings.setdefault("refusal_burst", 100_000)
    databases.remember(data_dir)
    config = Settings(data_dir=data_dir, **settings)
    services = Services.open(config, engine=engine)
    client = TestClient(create_app(config, services))
    return services, client


@pytest.fixture(scope="module")
def api(tmp_path_factory, shared_engine, database):
    data_dir = tmp_path_factory.mktemp("data")
    services, client = open_api(data_dir, shared_engine, max_image_bytes=2_000_000)
    with client:
        yield Api(client, data_dir)
    services.close()


# Every test here runs on SQLite and on PostgreSQL.
database = databases.database
database_per_test = databases.database_per_test
