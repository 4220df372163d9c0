"""Signature V4 failures are refused with AccessDeniedException and logged on the ledger."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from faceledger.api.rekognition import sigv4
from faceledger.service.auth import Actor, Role
from faceledger.service.common import Request
from faceledger.service.ledger import ledger_events


def refusals(server) -> list[dict]:
    server.services.refusals.flush(everything=True)  # aggregated repeats, written now
    events = ledger_events(server.services, Request(Actor("test", Role.LOCAL)))
    return [e["event"] for e in events if e["event"]["outcome"] == "refused"]


def test_unsigned_request(server) -> None:
    unsigned = boto3.client(
        "rekognition",
        endpoint_url=server.url,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED),
    )
    with pytest.raises(unsigned.exceptions.AccessDeniedException, match="not signed"):
        unsigned.list_collections()


def test_wrong_secret_and_unknown_key(server) -> None:
    key_id, _ = server.aws_key()
    wrong = server.client((key_id, "not-the-secret"))
    with pytest.raises(wrong.exceptions.AccessDeniedException, match="does not match"):
        wrong.list_collections()
    unknown = server.client(("FLAKUNKNOWN000000000", "whatever"))
    with pytest.raises(unknown.exceptions.AccessDeniedException, match="not known"):
        unknown.list_collections()
    logged = refusals(server)
    named = [
        (e["operation"], e["actor_key_id"])
        if e["operation"] != "RepeatedRefusals"
        else (e["results"]["operations"], e["results"]["key_ids"])
        for e in logged
    ]
    assert any("ListCollections" in ops and key_id in keys for ops, keys in map(_as_lists, named))
    assert any("FLAKUNKNOWN000000000" in keys for _, keys in map(_as_lists, named))


def _as_lists(pair):
    ops, keys = pair
    return ([ops] if isinstance(ops, str) else ops), ([keys] if isinstance(keys, str) else keys)


def signed_request(server, key: tuple[str, str], when: dt.datetime) -> urllib.request.Request:
    body = b"{}"
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    headers = {
        "host": f"127.0.0.1:{server.port}",
        "x-amz-date": amz_date,
        "x-amz-target": "RekognitionService.ListCollections",
        "content-type": "application/x-amz-json-1.1",
    }
    names = sorted(headers)
    request = sigv4.SignedRequest(
        key[0], amz_date[:8], "us-east-1", "rekognition", names, "", amz_date
    )
    signature = sigv4.signature(
        key[1], request, method="POST", path="/", query="", headers=headers, body=body
    )
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={key[0]}/{amz_date[:8]}/us-east-1/rekognition/"
        f"aws4_request, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    return urllib.request.Request(server.url + "/", data=body, headers=headers, method="POST")


def test_request_older_than_five_minutes(server) -> None:
    key = server.aws_key()
    now = dt.datetime.now(dt.UTC)
    with urllib.request.urlopen(signed_request(server, key, now)) as fresh:
        assert "CollectionIds" in json.load(fresh)  # the hand-made signature is right...
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(signed_request(server, key, now - dt.timedelta(minutes=6)))
    error = json.loads(caught.value.read())
    assert error["__type"] == "AccessDeniedException"  # ...and refused once stale
    assert "5 minutes" in error["message"]


def test_secrets_are_not_stored_in_clear(server) -> None:
    key_id, secret = server.aws_key()
    # The database with its write-ahead log, where fresh rows sit until a checkpoint.
    database = b"".join(p.read_bytes() for p in server.settings.data_dir.glob("faceledger.db*"))
    assert key_id.encode() in database and secret.encode() not in database


def test_admins_issue_aws_keys_over_the_native_api(server) -> None:
    import httpx

    admin = (server.settings.data_dir / "admin-key.txt").read_text().strip()
    issued = httpx.post(
        f"{server.url}/v1/keys",
        headers={"Authorization": f"Bearer {admin}"},
        json={"role": "operator", "name": "app", "aws": True, "purpose": "door access"},
    ).json()
    client = server.client((issued["key_id"], issued["token"]))
    assert "CollectionIds" in client.list_collections()


def test_token_bucket() -> None:
    from faceledger.api.rekognition.ratelimit import RateLimiter

    limiter = RateLimiter(2.0)
    assert [limiter.allow("k") for _ in range(3)] == [True, True, False]
    assert limiter.allow("other")
    assert RateLimiter(0.0).allow("k")  # 0 = no limit
    slow = RateLimiter(0.1)
    assert slow.allow("k") and not slow.allow("k")
