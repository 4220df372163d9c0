"""Face crops kept for review: encrypted at rest and bound to their face, shown only to the roles
that need them, every showing on the ledger, rate-limited, and gone with their face."""

from __future__ import annotations

import base64
import datetime as dt
import io

import pytest
from PIL import Image

from faceledger.service import retention
from faceledger.service.auth import Actor, Role
from faceledger.service.common import Request
from tests import databases
from tests.api.conftest import Api, lfw_image, open_api

PEOPLE = ("George_W_Bush", "Colin_Powell")
INVESTIGATION = {"purpose": "robbery inquiry", "case": "CASE-77", "legal_basis": "warrant"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, shared_engine, database):
    data_dir = tmp_path_factory.mktemp("crops")
    services, client = open_api(data_dir, shared_engine, crop_views_per_minute=40)
    with client:
        yield Api(client, data_dir), services, data_dir


def _collection(api: Api, name: str, keep: bool | None) -> dict:
    body = {"collection_id": name} | ({} if keep is None else {"keep_face_crops": keep})
    response = api.client.post("/v1/collections", json=body, headers=api.admin)
    assert response.status_code == 201, response.text
    return response.json()


def _enrol(api: Api, collection: str) -> dict[str, str]:
    """person -> face id, one LFW photo each."""
    ids = {}
    for person in PEOPLE:
        response = api.index(collection, lfw_image(person, 1), person, max_faces=1)
        assert response.status_code == 200, response.text
        ids[person] = response.json()["indexed"][0]["face"]["face_id"]
    return ids


def _sealed(data_dir, face_id: str) -> bytes:
    with databases.connect(data_dir) as db:
        row = db.execute("SELECT sealed FROM face_crops WHERE face_id = ?", (face_id,)).fetchone()
    return row[0] if row else b""


def _events(api: Api, operation: str) -> list[dict]:
    response = api.client.get(
        f"/v1/ledger/events?operation={operation}&limit=1000", headers=api.auditor
    )
    assert response.status_code == 200, response.text
    return [item["event"] for item in response.json()["events"]]


def test_crops_are_sealed_bound_to_their_face_and_ledgered_on_view(served) -> None:
    api, services, data_dir = served
    assert _collection(api, "kept", True)["keep_face_crops"] is True
    ids = _enrol(api, "kept")
    bush, powell = ids["George_W_Bush"], ids["Colin_Powell"]
    sealed = _sealed(data_dir, bush)
    assert sealed and b"\xff\xd8\xff" not in sealed and b"JFIF" not in sealed  # not in clear
    # Bound to the face: Powell's crop row given Bush's sealed bytes does not open.
    with pytest.raises(Exception, match="cannot be decrypted"):
        services.crops.open_bytes(sealed, "face:" + powell)
    # Nothing under the data directory holds a JPEG in clear (the WAL and the database).
    for path in data_dir.rglob("*"):
        if path.is_file() and path.suffix != ".key":
            assert b"JFIF" not in path.read_bytes(), path

    before = len(_events(api, "ViewFaceCrops"))
    response = api.client.post(
        "/v1/collections/kept/faces/crops",
        json={"face_ids": [bush, powell], "purpose": "tidying enrolment"},
        headers=api.operator,
    )
    assert response.status_code == 200, response.text
    crops = response.json()["crops"]
    assert set(crops) == {bush, powell}
    image = Image.open(io.BytesIO(base64.b64decode(crops[bush])))
    assert image.format == "JPEG" and image.size == (150, 150)
    events = _events(api, "ViewFaceCrops")
    assert len(events) == before + 1
    assert sorted(events[-1]["results"]["face_ids"]) == sorted([bush, powell])
    assert events[-1]["purpose"] == "tidying enrolment"

    # Auditors, reviewers and admins see counts, not faces.
    for role in ("auditor", "admin"):
        refused = api.client.post(
            "/v1/collections/kept/faces/crops",
            json={"face_ids": [bush]},
            headers=getattr(api, role),
        )
        assert refused.status_code == 403, refused.text
    assert len(_events(api, "ViewFaceCrops")) == before + 1


def test_a_collection_without_crops_keeps_none_and_switching_off_deletes_them(served) -> None:
    api, _, data_dir = served
    assert _collection(api, "bare", False)["keep_face_crops"] is False
    bare = _enrol(api, "bare")
    assert _sealed(data_dir, bare["George_W_Bush"]) == b""
    _collection(api, "switch", True)
    ids = _enrol(api, "switch")
    off = api.client.put(
        "/v1/collections/switch/face-crops", json={"keep_face_crops": False}, headers=api.admin
    )
    assert off.status_code == 200 and off.json()["deleted_crops"] == 2, off.text
    assert all(_sealed(data_dir, face_id) == b"" for face_id in ids.values())
    described = api.client.get("/v1/collections/switch", headers=api.admin).json()
    assert described["keep_face_crops"] is False


def test_crops_go_with_their_face_and_are_named_in_the_erasure_receipt(served) -> None:
    api, _, data_dir = served
    _collection(api, "gone", True)
    ids = _enrol(api, "gone")
    deleted = api.client.post(
        "/v1/collections/gone/faces/delete",
        json={"face_ids": [ids["Colin_Powell"]]},
        headers=api.operator,
    )
    assert deleted.status_code == 200, deleted.text
    assert _sealed(data_dir, ids["Colin_Powell"]) == b""
    erased = api.client.post(
        "/v1/erasure",
        json={"external_image_id": "George_W_Bush", "collections": ["gone"]},
        headers=api.admin,
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["receipt"]["removed"]["face_crops"] == [ids["George_W_Bush"]]
    assert _sealed(data_dir, ids["George_W_Bush"]) == b""


def test_reviewers_see_the_probe_and_candidates_of_open_tasks_only(served) -> None:
    api, services, data_dir = served
    _collection(api, "leads", True)
    investigator = api.key("operator", policy="investigative-lead")
    with lfw_image("George_W_Bush", 1).open("rb") as handle:
        indexed = api.client.post(
            "/v1/collections/leads/faces",
            files={"image": handle},
            data={"external_image_id": "gwb", **INVESTIGATION},
            headers=investigator,
        )
    assert indexed.status_code == 200, indexed.text
    face_id = indexed.json()["indexed"][0]["face"]["face_id"]
    with lfw_image("George_W_Bush", 2).open("rb") as handle:
        searched = api.client.post(
            "/v1/collections/leads/search",
            files={"image": handle},
            data={"threshold": "99", **INVESTIGATION},
            headers=investigator,
        )
    assert searched.status_code == 200, searched.text
    task_id = searched.json()["governance"]["review"]["task_id"]
    assert [m["face"]["face_id"] for m in searched.json()["matches"]] == [face_id]

    reviewer = api.key("reviewer")
    seen = api.client.get(f"/v1/reviews/{task_id}/crops", headers=reviewer)
    assert seen.status_code == 200, seen.text
    assert seen.json()["probe"] and set(seen.json()["faces"]) == {face_id}
    event = _events(api, "ViewFaceCrops")[-1]
    assert event["parameters"]["task_id"] == task_id and event["results"]["probe"] is True
    # Neither the searcher nor an auditor sees them.
    for headers in (investigator, api.auditor):
        assert api.client.get(f"/v1/reviews/{task_id}/crops", headers=headers).status_code == 403

    for decider in (reviewer, api.key("reviewer")):
        decided = api.client.post(
            f"/v1/reviews/{task_id}/decisions",
            json={"face_id": face_id, "decision": "confirm", "reason": "same person, ears"},
            headers=decider,
        )
        assert decided.status_code == 200, decided.text
    closed = api.client.get(f"/v1/reviews/{task_id}/crops", headers=reviewer)
    assert closed.status_code == 409, closed.text
    with databases.connect(data_dir) as db:
        kept = db.execute("SELECT sealed FROM review_probe_crops WHERE task_id = ?", (task_id,))
        assert b"JFIF" not in kept.fetchone()[0]

    # The probe's crop goes when the task's records expire (the policy keeps them 3 years);
    # the enrolled face, which that policy keeps, keeps its crop.
    system = Request(Actor("system:retention", Role.LOCAL))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3 * 365 + 2)
    run = retention.run_retention(services, system, later)
    assert task_id in run.deleted_review_tasks
    with databases.connect(data_dir) as db:
        probes = db.execute("SELECT count(*) FROM review_probe_crops WHERE task_id = ?", (task_id,))
        assert probes.fetchone()[0] == 0
    assert _sealed(data_dir, face_id)


def test_views_beyond_the_allowance_are_refused_and_recorded(served) -> None:
    api, services, _ = served
    _collection(api, "flood", True)
    ids = list(_enrol(api, "flood").values())
    statuses = []
    for _ in range(40):
        response = api.client.post(
            "/v1/collections/flood/faces/crops", json={"face_ids": ids}, headers=api.operator
        )
        statuses.append(response.status_code)
        if response.status_code != 200:
            assert response.status_code == 429, response.text
            break
    assert statuses[-1] == 429 and statuses.count(200) <= 20
    services.refusals.flush(everything=True)
    refused = [e for e in _events(api, "ViewFaceCrops") if e["outcome"] == "refused"]
    assert refused and refused[-1]["results"]["kind"] == "throttled"


def test_auto_keeps_crops_where_review_is_in_use(tmp_path, shared_engine) -> None:
    services, client = open_api(tmp_path, shared_engine)
    with client:
        api = Api(client, tmp_path)
        assert _collection(api, "before", None)["keep_face_crops"] is False
        api.key("operator", policy="investigative-lead")  # a policy requiring review, in use
        assert _collection(api, "after", None)["keep_face_crops"] is True
    services.close()
