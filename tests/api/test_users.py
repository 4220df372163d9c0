from __future__ import annotations

import pytest

from tests.api.conftest import lfw_image


@pytest.fixture(scope="module")
def bush(api) -> dict[str, str]:
    """Four photos of one person and one of another, indexed in a fresh collection."""
    api.client.post("/v1/collections", json={"collection_id": "users"}, headers=api.admin)
    faces = {}
    for n in range(1, 5):
        response = api.index("users", lfw_image("George_W_Bush", n), f"bush{n}", max_faces="1")
        faces[f"bush{n}"] = response.json()["indexed"][0]["face"]["face_id"]
    other = api.index("users", lfw_image("Colin_Powell", 1), "powell1", max_faces="1")
    faces["powell1"] = other.json()["indexed"][0]["face"]["face_id"]
    return faces


def url(path: str = "") -> str:
    return f"/v1/collections/users/users{path}"


def test_users_lifecycle(api, bush) -> None:
    c, op = api.client, api.operator
    assert c.post(url(), json={"user_id": "gwb"}, headers=op).status_code == 201
    assert c.post(url(), json={"user_id": "gwb"}, headers=op).status_code == 409
    first = c.post(url("/gwb/faces"), json={"face_ids": [bush["bush1"]]}, headers=op).json()
    assert first["associated_face_ids"] == [bush["bush1"]] and first["user_status"] == "ACTIVE"
    more = c.post(
        url("/gwb/faces"),
        json={"face_ids": [bush["bush2"], bush["bush3"], bush["powell1"], "no-such-face"]},
        headers=op,
    ).json()
    assert set(more["associated_face_ids"]) == {bush["bush2"], bush["bush3"]}
    reasons = {f["face_id"]: f["reasons"] for f in more["unsuccessful"]}
    assert reasons[bush["powell1"]] == ["LOW_MATCH_CONFIDENCE"]  # not like the user's faces
    assert reasons["no-such-face"] == ["FACE_NOT_FOUND"]

    c.post(url(), json={"user_id": "other"}, headers=op)
    taken = c.post(url("/other/faces"), json={"face_ids": [bush["bush1"]]}, headers=op).json()
    assert taken["unsuccessful"][0]["reasons"] == ["ASSOCIATED_TO_A_DIFFERENT_USER"]

    listed = c.get(url(), headers=op).json()["users"]
    assert {(u["user_id"], u["face_count"]) for u in listed} == {("gwb", 3), ("other", 0)}
    page = c.get(url(), params={"max_results": 1}, headers=op).json()
    assert len(page["users"]) == 1 and page["next_token"]

    # A face that belongs to a user is not deleted until it is disassociated.
    kept = c.post(
        "/v1/collections/users/faces/delete", json={"face_ids": [bush["bush3"]]}, headers=op
    ).json()
    assert kept["unsuccessful"][0]["reasons"] == ["ASSOCIATED_TO_AN_EXISTING_USER"]
    done = c.post(url("/gwb/faces/delete"), json={"face_ids": [bush["bush3"]]}, headers=op).json()
    assert done["associated_face_ids"] == [bush["bush3"]]


def test_search_users(api, bush) -> None:
    c, op = api.client, api.operator
    with lfw_image("George_W_Bush", 5).open("rb") as image:
        by_image = c.post(url("/search"), files={"image": image}, headers=op).json()
    assert by_image["matches"][0]["user_id"] == "gwb"
    assert by_image["searched_face"] is not None
    by_face = c.post(url("/search"), json={"face_id": bush["bush4"]}, headers=op).json()
    assert [m["user_id"] for m in by_face["matches"]] == ["gwb"]
    by_user = c.post(url("/search"), json={"user_id": "gwb"}, headers=op).json()
    assert "gwb" not in [m["user_id"] for m in by_user["matches"]]
    neither = c.post(url("/search"), json={}, headers=op)
    assert neither.status_code == 400


def test_delete_user_keeps_its_faces(api, bush) -> None:
    c, op = api.client, api.operator
    c.post(url(), json={"user_id": "temp"}, headers=op)
    c.post(url("/temp/faces"), json={"face_ids": [bush["bush4"]]}, headers=op)
    assert c.delete(url("/temp"), headers=op).status_code == 200
    assert c.delete(url("/temp"), headers=op).status_code == 404
    faces = c.get("/v1/collections/users/faces", headers=op).json()["faces"]
    record = next(f for f in faces if f["face_id"] == bush["bush4"])
    assert record["user_id"] is None
