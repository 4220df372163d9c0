from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import EXAMPLES, require


def test_only_health_answers_without_a_key(api) -> None:
    c = api.client
    assert c.get("/v1/health").json()["status"] == "ok"
    for method, path in [
        ("get", "/v1/collections"),
        ("post", "/v1/detect"),
        ("get", "/v1/ledger/verify"),
        ("get", "/v1/keys"),
    ]:
        response = getattr(c, method)(path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    bad = c.get("/v1/collections", headers={"Authorization": "Bearer flk_nope.secret"})
    assert bad.status_code == 401 and bad.json()["error"]["message"]
    c.app.state.services.refusals.flush(everything=True)  # repeats within a minute: one event
    events = c.get("/v1/ledger/events", headers=api.auditor).json()["events"]
    refused = [e["event"] for e in events if e["event"]["outcome"] == "refused"]
    first, repeats = refused[0], refused[-1]
    assert first["operation"] == "GET /v1/collections" and first["results"]["count"] == 1
    assert first["results"]["address"] == "testclient"
    assert repeats["operation"] == "RepeatedRefusals" and repeats["results"]["count"] == 4
    assert "flk_nope" in repeats["results"]["key_ids"]
    assert "GET /v1/keys" in repeats["results"]["operations"]
    assert "secret" not in json.dumps(refused)


def test_roles_are_enforced(api) -> None:
    c = api.client
    denied = c.post("/v1/collections", json={"collection_id": "x"}, headers=api.operator)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "PERMISSION_DENIED"
    assert c.get("/v1/ledger/verify", headers=api.operator).status_code == 403
    assert (
        c.post("/v1/keys", json={"role": "admin", "name": "x"}, headers=api.auditor).status_code
        == 403
    )
    # Admins manage, but do not search faces: separation of duties.
    with require(EXAMPLES / "obama.jpg").open("rb") as image:
        assert c.post("/v1/detect", files={"image": image}, headers=api.admin).status_code == 403
    assert c.get("/v1/ledger/verify", headers=api.auditor).json()["ok"] is True


def test_revoked_key_stops_working(api) -> None:
    headers = api.key("operator")
    key_id = headers["Authorization"].split()[1].split(".")[0]
    assert api.client.get("/v1/collections", headers=headers).status_code == 200
    assert api.client.delete(f"/v1/keys/{key_id}", headers=api.admin).status_code == 200
    assert api.client.get("/v1/collections", headers=headers).status_code == 401


def post_image(api, data: bytes, name: str = "x.jpg"):
    return api.client.post("/v1/detect", files={"image": (name, data)}, headers=api.operator)


def test_bad_images_get_their_codes(api, obama_bytes) -> None:
    truncated = post_image(api, obama_bytes[: len(obama_bytes) // 2])
    assert truncated.status_code == 400 and truncated.json()["error"]["code"] == "TRUNCATED"
    text = post_image(api, b"hello, not an image", "x.txt")
    assert text.status_code == 400 and text.json()["error"]["code"] == "UNSUPPORTED_FORMAT"
    empty = post_image(api, b"")
    assert empty.json()["error"]["code"] == "EMPTY"
    noise = np.random.default_rng(0).integers(0, 255, (900, 900, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")  # ~2.4 MB, over this server's 2 MB
    large = post_image(api, buffer.getvalue(), "noise.png")
    assert large.status_code == 413 and large.json()["error"]["code"] == "TOO_LARGE"


def test_request_over_the_body_limit(api) -> None:
    limit = api.client.app.state.services.settings.max_request_bytes
    response = api.client.post(
        "/v1/detect",
        content=b"x" * (limit + 1),
        headers=api.operator | {"content-type": "application/json"},
    )
    assert response.status_code == 413


def test_json_body_errors(api) -> None:
    c = api.client
    not_json = c.post(
        "/v1/detect", content=b"{nope", headers=api.operator | {"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "INVALID_PARAMETER"
    missing = c.post("/v1/detect", json={}, headers=api.operator)
    assert missing.status_code == 400 and "image" in missing.json()["error"]["message"]
    bad_b64 = c.post("/v1/detect", json={"image": "***"}, headers=api.operator)
    assert bad_b64.status_code == 400 and "base64" in bad_b64.json()["error"]["message"]
    bad_field = c.post("/v1/collections", json={"collection_id": "a b"}, headers=api.admin)
    assert bad_field.status_code == 400
    unknown = c.get("/v1/collections/nope", headers=api.operator)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "RESOURCE_NOT_FOUND"
    route = c.get("/v1/nothing-here", headers=api.operator)
    assert route.status_code == 404 and "error" in route.json()


def test_no_face_is_a_clear_400(api) -> None:
    dogs = require(EXAMPLES.parent.parent / "dlib" / "faces" / "dogs.jpg").read_bytes()
    api.client.post("/v1/collections", json={"collection_id": "empty"}, headers=api.admin)
    response = api.client.post(
        "/v1/collections/empty/search", files={"image": dogs}, headers=api.operator
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "NO_FACE_DETECTED"


def test_openapi_documents_both_body_kinds(api) -> None:
    spec = api.client.get("/openapi.json").json()
    body = spec["paths"]["/v1/collections/{collection_id}/faces"]["post"]["requestBody"]
    assert {"application/json", "multipart/form-data"} <= set(body["content"])


def test_independent_testing_endpoints(api, obama_bytes) -> None:
    import base64

    obama = base64.b64encode(obama_bytes).decode()
    obama2 = base64.b64encode(require(EXAMPLES / "obama2.jpg").read_bytes()).decode()
    biden = base64.b64encode(require(EXAMPLES / "biden.jpg").read_bytes()).decode()
    body = {
        "pairs": [
            {"a": {"image": obama}, "b": {"image": obama2}, "label": "same"},
            {"a": {"image": obama}, "b": {"image": biden}, "label": "different"},
            {"a": {"template": [0.0] * 128}, "b": {"template": [0.01] * 128}},
        ]
    }
    denied = api.client.post("/v1/evaluation/compare", json=body, headers=api.operator)
    assert denied.status_code == 403
    scored = api.client.post("/v1/evaluation/compare", json=body, headers=api.auditor)
    assert scored.status_code == 200, scored.text
    same, different, templates = scored.json()["pairs"]
    assert same["similarity"] > 90 > different["similarity"]
    assert templates["distance"] == pytest.approx(0.01 * 128**0.5, rel=1e-4)
    faces = api.client.get("/v1/collections", headers=api.auditor)
    assert faces.status_code == 200  # nothing was stored: no collection appeared
    missing = api.client.get("/v1/evaluation/reports/latest", headers=api.auditor)
    assert missing.status_code == 404 and "audit run" in missing.json()["error"]["message"]
    data_dir = api.client.app.state.services.settings.data_dir
    (data_dir / "audit").mkdir(exist_ok=True)
    (data_dir / "audit" / "latest-audit.json").write_text('{"created": "test"}')
    (data_dir / "audit" / "latest-audit.html").write_text("<h1>audit</h1>")
    latest = api.client.get("/v1/evaluation/reports/latest", headers=api.auditor)
    assert latest.json() == {"created": "test"}
    page = api.client.get(
        "/v1/evaluation/reports/latest", params={"format": "html"}, headers=api.auditor
    )
    assert page.headers["content-type"].startswith("text/html")
    events = api.client.get("/v1/ledger/events", headers=api.auditor).json()["events"]
    assert any(e["event"]["operation"] == "EvaluationCompare" for e in events)
