"""Erasure of a data subject and retention, on real faces; time is injected, never slept."""

from __future__ import annotations

import datetime as dt

import pytest

from faceledger.governance.signing import load_public_key
from faceledger.service import retention
from faceledger.service.auth import Actor, Role
from faceledger.service.common import Request
from faceledger.service.consent import mark_used
from faceledger.service.erasure import receipt_valid
from faceledger.store.schema import FaceRow
from tests.api.conftest import Api, lfw_image, lfw_people, open_api

CASE = {"purpose": "inquiry", "case": "C-1", "legal_basis": "warrant"}
SYSTEM = Request(Actor("test:clock", Role.LOCAL))


@pytest.fixture(scope="module")
def env(tmp_path_factory, shared_engine, database):
    data_dir = tmp_path_factory.mktemp("erasure")
    services, client = open_api(data_dir, shared_engine)
    with client:
        api = Api(client, data_dir)
        api.services = services
        yield api
    services.close()


def index(api: Api, collection: str, path, external_id: str, headers=None, **fields) -> str:
    with path.open("rb") as handle:
        response = api.client.post(
            f"/v1/collections/{collection}/faces",
            files={"image": handle},
            data={"external_image_id": external_id, "max_faces": "1", **fields},
            headers=headers or api.operator,
        )
    assert response.status_code == 200, response.text
    return response.json()["indexed"][0]["face"]["face_id"]


def search(api: Api, collection: str, path, headers=None, **fields) -> dict:
    with path.open("rb") as handle:
        response = api.client.post(
            f"/v1/collections/{collection}/search",
            files={"image": handle},
            data={k: str(v) for k, v in fields.items()},
            headers=headers or api.operator,
        )
    assert response.status_code == 200, response.text
    return response.json()


def events(api: Api, operation: str) -> list[dict]:
    page = api.client.get("/v1/ledger/events", params={"limit": 10_000}, headers=api.auditor)
    return [i["event"] for i in page.json()["events"] if i["event"]["operation"] == operation]


def test_erasure_removes_everything_and_signs_a_receipt(env) -> None:
    subject, *others = lfw_people(5)
    for collection in ("club-a", "club-b"):
        env.client.post("/v1/collections", json={"collection_id": collection}, headers=env.admin)
    first = index(env, "club-a", lfw_image(subject, 1), "subject-x")
    second = index(env, "club-b", lfw_image(subject, 2), "subject-x")
    for person in others:
        index(env, "club-a", lfw_image(person, 1), person)
    consent = {
        "subject_kind": "external_image",
        "subject": "subject-x",
        "consented_by": "the subject",
        "document_reference": "forms/17",
    }
    assert (
        env.client.post(
            "/v1/collections/club-a/consents", json=consent, headers=env.operator
        ).status_code
        == 201
    )
    investigator = env.key("operator", policy="investigative-lead")
    led = search(env, "club-a", lfw_image(subject, 1), investigator, threshold=99, **CASE)
    task_id = led["governance"]["review"]["task_id"]
    before = search(env, "club-b", lfw_image(subject, 1), threshold=80)
    assert [m["face"]["face_id"] for m in before["matches"]] == [second]

    erased = env.client.post(
        "/v1/erasure",
        json={"external_image_id": "subject-x", "purpose": "deletion request DR-9"},
        headers=env.admin,
    )
    assert erased.status_code == 200, erased.text
    signed = erased.json()
    receipt = signed["receipt"]
    assert receipt["removed"]["faces"] == {"club-a": [first], "club-b": [second]}
    assert receipt["removed"]["index_entries"] == 2
    assert len(receipt["removed"]["consent_records"]) == 1
    assert receipt["removed"]["review_candidates"] == 1
    key = env.client.get("/v1/ledger/public-key", headers=env.auditor).json()
    assert key["key_id"] == receipt["public_key_id"]
    assert receipt_valid(signed, load_public_key(key["pem"]))
    forged = {
        **signed,
        "receipt": {**receipt, "removed": {**receipt["removed"], "index_entries": 1}},
    }
    assert not receipt_valid(forged, load_public_key(key["pem"]))

    # No residual match: the subject's own photos find nothing, even with no threshold at all.
    for collection in ("club-a", "club-b"):
        for number in (1, 2, 3):
            after = search(env, collection, lfw_image(subject, number), threshold=0, max_faces=100)
            assert "subject-x" not in {m["face"]["external_image_id"] for m in after["matches"]}
    assert search(env, "club-b", lfw_image(subject, 1), threshold=0)["matches"] == []
    task = env.client.get(f"/v1/reviews/{task_id}", headers=env.auditor).json()
    assert first not in [c["face_id"] for c in task["candidates"]]
    listed = env.client.get("/v1/collections/club-a/consents", headers=env.admin).json()["consents"]
    assert listed == []
    (event,) = events(env, "EraseSubject")
    assert "subject-x" not in str(event) and event["parameters"]["subject_sha256"]
    assert event["results"] == {
        "faces": 2,
        "face_crops": 0,  # the collection keeps none
        "users": 0,
        "consents": 1,
        "review_candidates": 1,
        "video_matches": 0,
    }


def test_erasure_by_user_id(env) -> None:
    (person,) = lfw_people(1)
    env.client.post("/v1/collections", json={"collection_id": "members"}, headers=env.admin)
    faces = [index(env, "members", lfw_image(person, n), f"m{n}") for n in (1, 2)]
    env.client.post("/v1/collections/members/users", json={"user_id": "u-17"}, headers=env.operator)
    associated = env.client.post(
        "/v1/collections/members/users/u-17/faces", json={"face_ids": faces}, headers=env.operator
    )
    assert associated.status_code == 200, associated.text
    receipt = env.client.post("/v1/erasure", json={"user_id": "u-17"}, headers=env.admin).json()[
        "receipt"
    ]
    assert sorted(receipt["removed"]["faces"]["members"]) == sorted(faces)
    assert receipt["removed"]["users"] == [{"collection_id": "members", "user_id": "u-17"}]
    users = env.client.get("/v1/collections/members/users", headers=env.operator).json()
    assert users["users"] == []
    assert env.client.post("/v1/erasure", json={}, headers=env.admin).status_code == 400
    assert (
        env.client.post("/v1/erasure", json={"user_id": "u-1"}, headers=env.operator).status_code
        == 403
    )


def test_retention_deletes_exactly_what_is_due(env) -> None:
    a, b = lfw_people(2)
    env.client.post("/v1/collections", json={"collection_id": "kiosk"}, headers=env.admin)
    assert (
        env.client.put(
            "/v1/collections/kiosk/retention", json={"days": 30}, headers=env.admin
        ).status_code
        == 200
    )
    face_a = index(env, "kiosk", lfw_image(a, 1), "a")
    face_b = index(env, "kiosk", lfw_image(b, 1), "b")
    with env.services.db.read() as session:
        created = max(session.get(FaceRow, f).created_at for f in (face_a, face_b))
    created = created if created.tzinfo else created.replace(tzinfo=dt.UTC)
    # a is found by a search 20 days later: its 30 days start again from there.
    with env.services.db.write() as session:
        mark_used(session, [face_a], created + dt.timedelta(days=20))

    def run(days: float):
        return retention.run_retention(env.services, SYSTEM, created + dt.timedelta(days=days))

    assert run(29).deleted_faces == {}
    assert run(31).deleted_faces == {"kiosk": [face_b]}
    assert (
        search(env, "kiosk", lfw_image(b, 2), threshold=0)["matches"][0]["face"]["face_id"]
        == face_a
    )
    assert run(49).deleted_faces == {}
    assert run(51).deleted_faces == {"kiosk": [face_a]}
    assert search(env, "kiosk", lfw_image(a, 1), threshold=0)["matches"] == []
    recorded = [e["results"]["deleted_faces"] for e in events(env, "RetentionRun")]
    assert {"kiosk": [face_b]} in recorded and {"kiosk": [face_a]} in recorded


def test_policy_retention_for_faces_and_search_records(env) -> None:
    (person,) = lfw_people(1)
    env.client.post("/v1/collections", json={"collection_id": "album"}, headers=env.admin)
    library = env.key("operator")  # photo-library: faces kept 3 years after last use
    consent = {"subject_kind": "collection", "consented_by": "family", "document_reference": "f/1"}
    env.client.post("/v1/collections/album/consents", json=consent, headers=library)
    face = index(env, "album", lfw_image(person, 1), "p1", headers=library)
    investigator = env.key("operator", policy="investigative-lead")
    task_id = search(env, "album", lfw_image(person, 1), investigator, threshold=99, **CASE)[
        "governance"
    ]["review"]["task_id"]
    now = dt.datetime.now(dt.UTC)
    three_years = dt.timedelta(days=3 * 365)
    soon = retention.run_retention(env.services, SYSTEM, now + three_years - dt.timedelta(days=2))
    assert (
        face not in soon.deleted_faces.get("album", []) and task_id not in soon.deleted_review_tasks
    )
    late = retention.run_retention(env.services, SYSTEM, now + three_years + dt.timedelta(days=2))
    assert face in late.deleted_faces["album"] and task_id in late.deleted_review_tasks
    assert env.client.get(f"/v1/reviews/{task_id}", headers=env.auditor).status_code == 404
