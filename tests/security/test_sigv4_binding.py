"""A signature binds the body and the region (finding 2 of the hardening issue)."""

from __future__ import annotations

import base64
import hashlib
import json

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import lfw_image
from tests.rekognition.conftest import Server
from tests.security.conftest import send, signed_request


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Server(tmp_path_factory.mktemp("sigv4"), aws_regions="us-east-1,eu-west-1") as running:
        yield running


def index_body(collection: str, image: bytes, external_id: str) -> dict:
    return {
        "CollectionId": collection,
        "Image": {"Bytes": base64.b64encode(image).decode()},
        "ExternalImageId": external_id,
    }


def test_a_captured_request_cannot_carry_another_body(server) -> None:
    key = server.aws_key()
    rek = server.client(key)
    server.client(server.aws_key("admin")).create_collection(CollectionId="bound")
    original = index_body("bound", lfw_image("Tony_Blair", 1).read_bytes(), "tony")
    headers, body = signed_request(server.url, key, "IndexFaces", original)
    swapped = index_body("bound", lfw_image("George_W_Bush", 1).read_bytes(), "mallory")
    forged_body = json.dumps(swapped).encode()
    # The attack: keep the captured signature, declare the old body's hash, send a new body.
    replay = headers | {"X-Amz-Content-Sha256": hashlib.sha256(body).hexdigest()}
    refused = send(server.url, replay, forged_body)
    assert refused.status_code == 400
    assert refused.json()["__type"] == "AccessDeniedException"
    assert "does not match the body" in refused.json()["message"]
    # Without the header the signature itself no longer matches.
    assert send(server.url, headers, forged_body).json()["__type"] == "AccessDeniedException"
    assert rek.list_faces(CollectionId="bound")["Faces"] == []  # nothing was stored
    accepted = send(server.url, headers, body)  # the genuine request still works
    assert accepted.status_code == 200, accepted.text
    faces = rek.list_faces(CollectionId="bound")["Faces"]
    # Tony_Blair_0001 has a second face at its edge, which YuNet finds: both are the original's
    assert faces and {f["ExternalImageId"] for f in faces} == {"tony"}


def test_unsigned_payload_is_refused(server) -> None:
    key = server.aws_key()
    headers, body = signed_request(server.url, key, "ListCollections", {})
    unsigned = headers | {"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}
    response = send(server.url, unsigned, body)
    assert response.json()["__type"] == "AccessDeniedException"
    honest = headers | {"X-Amz-Content-Sha256": hashlib.sha256(body).hexdigest()}
    assert send(server.url, honest, body).status_code == 200


def test_only_accepted_regions(server) -> None:
    key = server.aws_key()
    for region in ("us-east-1", "eu-west-1"):
        headers, body = signed_request(server.url, key, "ListCollections", {}, region=region)
        assert send(server.url, headers, body).status_code == 200, region
    headers, body = signed_request(server.url, key, "ListCollections", {}, region="ap-south-1")
    response = send(server.url, headers, body)
    assert response.json()["__type"] == "AccessDeniedException"
    assert "region 'ap-south-1'" in response.json()["message"]
    boto = boto3.client(
        "rekognition",
        endpoint_url=server.url,
        region_name="ap-south-1",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
    )
    with pytest.raises(ClientError) as caught:
        boto.list_collections()
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
