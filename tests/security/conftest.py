from __future__ import annotations

import json

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed_request(
    url: str,
    key: tuple[str, str],
    action: str,
    body: dict | bytes,
    region: str = "us-east-1",
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a Rekognition request signed by botocore itself, as boto3 sends it."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = AWSRequest(
        method="POST",
        url=url + "/",
        data=raw,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"RekognitionService.{action}",
        },
    )
    SigV4Auth(Credentials(*key), "rekognition", region).add_auth(request)
    return dict(request.headers.items()), raw


def send(url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(url + "/", headers=headers, content=body, timeout=60)


# The API tests' fixtures: a TestClient with keys for each role, and one shared engine.
from tests.api.conftest import api, shared_engine  # noqa: E402, F401
