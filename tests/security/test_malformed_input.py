"""Malformed input gets a clear 4xx in the API's own shape, never a 500 (findings 7, 8, 10)."""

from __future__ import annotations

import base64
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from faceledger.api import create_app
from tests.api.conftest import lfw_image
from tests.rekognition.conftest import Server
from tests.security.conftest import send, signed_request

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Server(tmp_path_factory.mktemp("malformed")) as running:
        key = running.aws_key()
        running.client(running.aws_key("admin")).create_collection(CollectionId="m")
        running.key = key
        yield running


def aws(server, action: str, body: dict | bytes) -> tuple[int, dict]:
    headers, raw = signed_request(server.url, server.key, action, body)
    response = send(server.url, headers, raw)
    return response.status_code, response.json()


def test_deeply_nested_json_on_the_rekognition_endpoint(server) -> None:
    status, body = aws(server, "ListCollections", DEEP)
    assert status == 400 and body["__type"] == "InvalidParameterException"
    assert "nested" in body["message"]
    status, body = aws(server, "ListCollections", b'{"a": ' + b"[" * 50 + b"]" * 50 + b"}")
    assert status == 400 and body["__type"] == "InvalidParameterException"


def test_deeply_nested_json_on_rest(api) -> None:
    response = api.client.post(
        "/v1/detect",
        content=DEEP,
        headers={**api.operator, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_PARAMETER"
    for route in ("/v1/collections", "/v1/policies", "/v1/keys"):
        response = api.client.post(
            route, content=DEEP, headers={**api.admin, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, (route, response.text)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("MaxResults", "x", "MaxResults must be a whole number"),
        ("MaxResults", 2.5, "MaxResults must be a whole number"),
        ("MaxResults", True, "MaxResults must be a whole number"),
        ("MaxResults", 5000, "between 0 and 4096"),
        ("NextToken", 12345, "pagination token"),
        ("Bogus", 1, "unknown members for ListFaces: Bogus"),
    ],
)
def test_list_faces_fields_are_checked(server, field, value, says) -> None:
    status, body = aws(server, "ListFaces", {"CollectionId": "m", field: value})
    assert status == 400 and body["__type"] == "InvalidParameterException"
    assert says in body["message"]
    assert "int" not in body["message"].split("(got")[0]  # no Python type names


def test_a_forged_next_token_is_refused(server) -> None:
    status, body = aws(server, "ListFaces", {"CollectionId": "m", "NextToken": "!!!"})
    assert status == 400 and body["__type"] == "InvalidPaginationTokenException"
    status, body = aws(server, "ListCollections", {"NextToken": "bm90IGEgdG9rZW4"})
    assert body["__type"] == "InvalidPaginationTokenException"


def test_max_faces_is_checked_before_any_work(server, monkeypatch) -> None:
    image = base64.b64encode(lfw_image("Tony_Blair", 1).read_bytes()).decode()
    calls = []
    monkeypatch.setattr(server.services.engine, "analyze", lambda *a: calls.append(a) or [])
    for value, says in (("x", "whole number"), (2.5, "whole number"), (True, "whole number")):
        status, body = aws(
            server,
            "SearchFacesByImage",
            {"CollectionId": "m", "Image": {"Bytes": image}, "MaxFaces": value},
        )
        assert status == 400 and body["__type"] == "InvalidParameterException"
        assert says in body["message"]
    assert calls == []  # refused before the image was decoded or a face embedded


def test_detect_faces_attributes_and_images(server) -> None:
    image = base64.b64encode(lfw_image("Tony_Blair", 1).read_bytes()).decode()
    status, body = aws(server, "DetectFaces", {"Image": {"Bytes": image}, "Attributes": ["x"]})
    assert status == 400 and "one of DEFAULT, ALL" in body["message"]
    status, body = aws(server, "DetectFaces", {"Image": {"Bytes": image}, "Attributes": "ALL"})
    assert status == 400 and "Attributes must be a list" in body["message"]
    status, body = aws(server, "DetectFaces", {"Image": "x"})
    assert status == 400 and "Image must be an object" in body["message"]
    status, body = aws(server, "DetectFaces", {"Image": {"Bytes": "!!notbase64"}})
    assert status == 400 and "not valid base64" in body["message"]
    status, body = aws(server, "DetectFaces", {"Image": {"Bytes": image}, "Attributes": ["ALL"]})
    assert status == 200 and body["FaceDetails"]


def test_every_problem_is_named_at_once(server) -> None:
    status, body = aws(server, "SearchFaces", {"CollectionId": "bad id!", "MaxFaces": 0})
    assert status == 400
    for part in ("FaceId is required", "CollectionId must be", "MaxFaces must be between"):
        assert part in body["message"]


def encode(image: Image.Image, kind: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def post_image(api, data: bytes):
    return api.client.post("/v1/detect", files={"image": ("x", data)}, headers=api.operator)


def test_corrupt_images_are_called_corrupt_not_unknown(api) -> None:
    picture = Image.open(lfw_image("Tony_Blair", 1))
    png = encode(picture, "PNG")
    gif = encode(picture, "GIF")
    for damaged in (png[:40] + b"\x00" * 30, png[:8] + b"garbage" * 10, gif[:12]):
        response = post_image(api, damaged)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "TRUNCATED", response.text
    assert post_image(api, b"plain text, no image").json()["error"]["code"] == (
        "UNSUPPORTED_FORMAT"
    )


def test_limits_are_stated_in_the_readme_units(api) -> None:
    # The test server's image limit is 2,000,000 bytes; the README states MiB.
    response = post_image(api, b"\xff\xd8\xff" + b"\x00" * 2_100_000)
    assert response.status_code == 413
    assert "the limit is 1.9 MiB" in response.json()["error"]["message"]


def test_base64_with_line_breaks_or_a_data_url_is_accepted(api) -> None:
    data = lfw_image("Tony_Blair", 1).read_bytes()
    plain = base64.b64encode(data).decode()
    wrapped = "\n".join(plain[i : i + 76] for i in range(0, len(plain), 76))
    for text in (wrapped, "data:image/jpeg;base64," + plain):
        response = api.client.post("/v1/detect", json={"image": text}, headers=api.operator)
        assert response.status_code == 200, response.text
    refused = api.client.post("/v1/detect", json={"image": "abc$def"}, headers=api.operator)
    assert refused.status_code == 400 and "unexpected '$'" in refused.json()["error"]["message"]
    refused = api.client.post(
        "/v1/detect", json={"image": "data:image/jpeg,abc"}, headers=api.operator
    )
    assert "must be base64" in refused.json()["error"]["message"]


def test_an_aws_secret_is_not_a_bearer_token(server, api) -> None:
    key_id, secret = server.aws_key()
    with TestClient(create_app(server.settings, server.services)) as client:
        response = client.get(
            "/v1/collections", headers={"Authorization": f"Bearer {key_id}.{secret}"}
        )
    assert response.status_code == 401
    assert "not a bearer token" in response.json()["error"]["message"]
