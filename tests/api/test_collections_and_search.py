from __future__ import annotations

import pytest

from tests.api.conftest import lfw_image, lfw_people
from tests.conftest import DLIB_FACES, EXAMPLES, require

PEOPLE = 50


@pytest.fixture(scope="module")
def people(api) -> dict[str, str]:
    """50 LFW people indexed by their first photo: name -> face id."""
    names = lfw_people(PEOPLE)
    created = api.client.post("/v1/collections", json={"collection_id": "lfw50"}, headers=api.admin)
    assert created.status_code == 201
    faces = {}
    for name in names:
        response = api.index("lfw50", lfw_image(name, 1), name, max_faces="1")
        assert response.status_code == 200, response.text
        (record,) = response.json()["indexed"]
        faces[name] = record["face"]["face_id"]
    return faces


def test_another_photo_finds_the_same_person_first(api, people) -> None:
    first_right = 0
    for name in people:
        response = api.search("lfw50", lfw_image(name, 2), threshold=50, max_faces=5)
        assert response.status_code == 200, response.text
        matches = response.json()["matches"]
        if matches and matches[0]["face"]["external_image_id"] == name:
            first_right += 1
    assert first_right / len(people) >= 0.96  # measured: 50 of 50


def test_threshold_and_max_faces_are_honoured(api, people) -> None:
    name = next(iter(people))
    loose = api.search("lfw50", lfw_image(name, 2), threshold=0, max_faces=7).json()
    assert len(loose["matches"]) == 7
    similarities = [m["similarity"] for m in loose["matches"]]
    assert similarities == sorted(similarities, reverse=True)
    strict = api.search("lfw50", lfw_image(name, 2), threshold=80).json()
    assert all(m["similarity"] >= 80 for m in strict["matches"])
    assert len(strict["matches"]) < 7
    assert all(0 <= m["false_match_rate"] <= 1 for m in strict["matches"])
    assert api.search("lfw50", lfw_image(name, 2), threshold=101).status_code == 400


def test_search_by_face_id_leaves_the_face_out(api, people) -> None:
    _name, face_id = next(iter(people.items()))
    response = api.client.post(
        f"/v1/collections/lfw50/faces/{face_id}/search",
        json={"threshold": 0, "max_faces": 3},
        headers=api.operator,
    )
    assert response.status_code == 200
    assert face_id not in [m["face"]["face_id"] for m in response.json()["matches"]]
    assert len(response.json()["matches"]) == 3


def test_list_faces_paginates(api, people) -> None:
    seen, token, pages = [], None, 0
    while True:
        params = {"max_results": 20} | ({"next_token": token} if token else {})
        page = api.client.get(
            "/v1/collections/lfw50/faces", params=params, headers=api.operator
        ).json()
        seen += [f["face_id"] for f in page["faces"]]
        pages += 1
        token = page["next_token"]
        if not token:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == PEOPLE
    assert set(seen) == set(people.values())
    described = api.client.get("/v1/collections/lfw50", headers=api.operator).json()
    assert described["face_count"] == PEOPLE


def test_collections_list_and_delete(api) -> None:
    for i in range(5):
        assert (
            api.client.post(
                "/v1/collections", json={"collection_id": f"page-{i}"}, headers=api.admin
            ).status_code
            == 201
        )
    again = api.client.post("/v1/collections", json={"collection_id": "page-0"}, headers=api.admin)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "RESOURCE_ALREADY_EXISTS"
    ids, token = [], None
    while True:
        params = {"max_results": 2} | ({"next_token": token} if token else {})
        page = api.client.get("/v1/collections", params=params, headers=api.operator).json()
        ids += page["collection_ids"]
        if not (token := page["next_token"]):
            break
    assert {f"page-{i}" for i in range(5)} <= set(ids) and ids == sorted(ids)
    assert api.client.delete("/v1/collections/page-0", headers=api.admin).status_code == 200
    assert api.client.get("/v1/collections/page-0", headers=api.operator).status_code == 404


def test_index_quality_filter_and_max_faces(api) -> None:
    api.client.post("/v1/collections", json={"collection_id": "group"}, headers=api.admin)
    crowd = require(DLIB_FACES / "2008_004176.jpg")  # 7 faces of 37 px
    dropped = api.index("group", crowd, "crowd", quality_filter="AUTO").json()
    assert dropped["indexed"] == [] and len(dropped["unindexed"]) == 7
    assert all("SMALL_BOUNDING_BOX" in u["reasons"] for u in dropped["unindexed"])
    capped = api.index("group", crowd, "crowd", quality_filter="NONE", max_faces="3").json()
    assert len(capped["indexed"]) == 3
    assert [u["reasons"] for u in capped["unindexed"]] == [["EXCEEDS_MAX_FACES"]] * 4
    kept = [f["face"]["box"]["width"] * f["face"]["box"]["height"] for f in capped["indexed"]]
    cut = [u["face"]["box"]["width"] * u["face"]["box"]["height"] for u in capped["unindexed"]]
    assert min(kept) >= max(cut)  # the largest are kept


def test_delete_faces(api) -> None:
    api.client.post("/v1/collections", json={"collection_id": "deleting"}, headers=api.admin)
    face = api.index("deleting", require(EXAMPLES / "obama.jpg"), "obama").json()
    face_id = face["indexed"][0]["face"]["face_id"]
    response = api.client.post(
        "/v1/collections/deleting/faces/delete",
        json={"face_ids": [face_id, "missing-id"]},
        headers=api.operator,
    )
    assert response.json()["deleted_face_ids"] == [face_id]
    assert response.json()["unsuccessful"][0]["reasons"] == ["FACE_NOT_FOUND"]
    after = api.search("deleting", EXAMPLES / "obama2.jpg", threshold=0).json()
    assert after["matches"] == []


def test_compare_and_detect(api) -> None:
    with (
        require(EXAMPLES / "obama.jpg").open("rb") as source,
        (EXAMPLES / "knn_examples" / "test" / "obama_and_biden.jpg").open("rb") as target,
    ):
        response = api.client.post(
            "/v1/compare",
            files={"source": source, "target": target},
            data={"threshold": "90"},
            headers=api.operator,
        )
    body = response.json()
    assert response.status_code == 200
    assert len(body["matches"]) == 1 and body["matches"][0]["similarity"] > 90
    assert len(body["unmatched"]) == 2
    import base64

    crowd = base64.b64encode(require(DLIB_FACES / "2008_004176.jpg").read_bytes()).decode()
    detected = api.client.post("/v1/detect", json={"image": crowd}, headers=api.operator).json()
    assert len(detected["faces"]) == 7
