from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import boto3
import pytest
import uvicorn
from botocore.config import Config

from faceledger.api import create_app
from faceledger.config import Settings
from faceledger.service import keys, policy
from faceledger.service.auth import Actor, Role
from faceledger.service.common import Request
from faceledger.service.context import Services
from faceledger.vision import FaceEngine
from tests.api.conftest import TEST_POLICY

LOCAL = Request(Actor("test", Role.LOCAL))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The real app under uvicorn on a free loopback port, in a thread."""

    def __init__(self, data_dir: Path, **settings: object) -> None:
        self.port = free_port()
        settings.setdefault("refusal_burst", 100_000)  # the throttle has its own tests
        self.settings = Settings(data_dir=data_dir, port=self.port, **settings)
        engine = FaceEngine.for_model(self.settings.face_model, cnn_fallback=True)
        self.services = Services.open(self.settings, engine=engine)
        policy.put_policy(self.services, LOCAL, TEST_POLICY)
        config = uvicorn.Config(
            create_app(self.settings, self.services),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.services.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def aws_key(
        self,
        role: str = "operator",
        purpose: str | None = None,
        policy: str | None = "test-open",
        case: str | None = None,
    ) -> tuple[str, str]:
        issued = keys.issue_key(
            self.services,
            LOCAL,
            role,
            f"test {role}",
            aws=True,
            purpose=purpose,
            policy=policy,
            case=case,
        )
        return issued.key_id, issued.token

    def client(self, key: tuple[str, str] | None = None, **overrides: object):
        key_id, secret = key or self.aws_key()
        return boto3.client(
            "rekognition",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}, **overrides),
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Server(tmp_path_factory.mktemp("rek")) as running:
        yield running


@pytest.fixture(scope="module")
def rek(server):
    return server.client(server.aws_key(purpose="rekognition tests"))


@pytest.fixture(scope="module")
def admin_rek(server):
    return server.client(server.aws_key("admin"))
