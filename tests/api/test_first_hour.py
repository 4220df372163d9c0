"""What a new user meets in the first hour of the native API: errors that name every problem,
listings that page, a ledger that can be filtered, inputs taken the same ways everywhere."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from faceledger.vision.types import LANDMARK_NAMES
from tests.api.conftest import lfw_image, lfw_people


def test_validation_names_every_offending_field_at_once(api) -> None:
    bad = api.client.post(
        "/v1/keys",
        json={"role": "king", "name": "", "colour": "blue"},
        headers=api.admin,
    )
    assert bad.status_code == 400
    message = bad.json()["error"]["message"]
    assert "role: expected 'admin', 'operator', 'reviewer' or 'auditor' (got 'king')" in message
    assert "name: " in message and "colour: not a field this route takes" in message
    # A form-encoded body where JSON is expected is told to send JSON.
    form = api.client.post("/v1/keys", data={"role": "operator", "name": "x"}, headers=api.admin)
    assert form.status_code == 400 and form.json()["error"]["message"].startswith("send JSON")
    form_search = api.client.post(
        "/v1/collections/any/search", data={"threshold": "90"}, headers=api.operator
    )
    assert form_search.status_code == 400
    assert "send JSON" in form_search.json()["error"]["message"]


@pytest.mark.parametrize(
    ("route", "typo", "named"),
    [
        ("/v1/keys", "max_result", "max_results"),
        ("/v1/ledger/events", "operations", "operation"),
        ("/v1/collections", "nexttoken", "next_token"),
        ("/v1/policies", "verbose", "no query parameters"),
    ],
)
def test_unknown_query_parameters_are_refused(api, route, typo, named) -> None:
    headers = api.admin if route != "/v1/ledger/events" else api.auditor
    refused = api.client.get(route, params={typo: "5"}, headers=headers)
    assert refused.status_code == 400, refused.text
    message = refused.json()["error"]["message"]
    assert repr(typo) in message and named in message
    assert api.client.get(route, headers=headers).status_code == 200


def test_create_key_says_its_policy_and_that_the_token_is_shown_once(api) -> None:
    created = api.client.post(
        "/v1/keys", json={"role": "operator", "name": "front desk"}, headers=api.admin
    ).json()
    assert created["policy"] == "photo-library" and created["aws"] is False
    assert "shown only now" in created["shown_once"]
    assert created["token"].startswith(created["key_id"] + ".")


def walk(api, url: str, items: str, headers, **params) -> list[dict]:
    """Every item of a listing, two at a time, checking each page's size."""
    seen: list[dict] = []
    token = None
    while True:
        query = {"max_results": 2, **params, **({"next_token": token} if token else {})}
        page = api.client.get(url, params=query, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body[items]) <= 2
        seen.extend(body[items])
        token = body["next_token"]
        if token is None:
            return seen


def test_keys_and_consents_are_paginated(api) -> None:
    names = [f"pager {i}" for i in range(5)]
    for name in names:
        api.client.post("/v1/keys", json={"role": "auditor", "name": name}, headers=api.admin)
    keys = walk(api, "/v1/keys", "keys", api.admin)
    assert len({k["key_id"] for k in keys}) == len(keys)  # none twice
    assert [k["name"] for k in keys if k["name"].startswith("pager")] == names  # oldest first
    everything = api.client.get("/v1/keys", headers=api.admin).json()["keys"]
    assert [k["key_id"] for k in everything] == [k["key_id"] for k in keys]

    api.client.post("/v1/collections", json={"collection_id": "paged"}, headers=api.admin)
    for user in ("u1", "u2", "u3"):
        recorded = api.client.post(
            "/v1/collections/paged/consents",
            json={
                "subject_kind": "user",
                "subject": user,
                "consented_by": user,
                "document_reference": f"forms/{user}",
            },
            headers=api.operator,
        )
        assert recorded.status_code == 201, recorded.text
    consents = walk(api, "/v1/collections/paged/consents", "consents", api.operator)
    assert [c["subject"] for c in consents] == ["u1", "u2", "u3"]
    # Tokens are not signed: whatever one says is checked (a zone that pushes a date past
    # year 1 once reached the database and gave a 500).
    for inside in ("not-a-time|key", "2026-01-01|key", "0001-01-01T00:00:00+01:00|key"):
        token = "flt1." + base64.urlsafe_b64encode(inside.encode()).decode().rstrip("=")
        forged = api.client.get("/v1/keys", params={"next_token": token}, headers=api.admin)
        assert forged.status_code == 400, (inside, forged.text)
        assert forged.json()["error"]["code"] == "INVALID_PAGINATION_TOKEN"


def test_ledger_events_filter(api) -> None:
    api.client.post("/v1/collections", json={"collection_id": "filtered"}, headers=api.admin)
    api.client.get("/v1/keys", headers={"Authorization": "Bearer flk_nobody.secret"})
    api.client.app.state.services.refusals.flush(everything=True)
    url = "/v1/ledger/events"

    def events(**params) -> list[dict]:
        response = api.client.get(url, params=params, headers=api.auditor)
        assert response.status_code == 200, response.text
        return [item["event"] for item in response.json()["events"]]

    everything = events()
    created = events(operation="CreateCollection")
    assert created and all(e["operation"] == "CreateCollection" for e in created)
    assert len(created) == sum(e["operation"] == "CreateCollection" for e in everything)
    assert [e["collection_id"] for e in events(collection_id="filtered")] == ["filtered"]
    refused = events(outcome="refused")
    assert refused and all(e["outcome"] == "refused" for e in refused)
    assert any(e["actor_key_id"] == "flk_nobody" for e in refused)
    admin_id = api.admin["Authorization"].split()[1].partition(".")[0]
    assert {e["actor_key_id"] for e in events(actor_key_id=admin_id)} == {admin_id}
    today = dt.datetime.now(dt.UTC).date()
    assert len(events(**{"from": today.isoformat()})) == len(everything)
    assert events(to=today.isoformat()) == []
    assert events(**{"from": (today + dt.timedelta(days=1)).isoformat()}) == []
    # Paging a filtered listing: next_after continues, null at the end.
    first = api.client.get(
        url, params={"operation": "CreateKey", "limit": 1}, headers=api.auditor
    ).json()
    assert len(first["events"]) == 1 and first["next_after"] is not None
    rest = api.client.get(
        url, params={"operation": "CreateKey", "after": first["next_after"]}, headers=api.auditor
    ).json()
    assert rest["next_after"] is None
    assert len(first["events"]) + len(rest["events"]) == len(events(operation="CreateKey"))
    wrong = api.client.get(url, params={"outcome": "maybe"}, headers=api.auditor)
    assert wrong.status_code == 400 and "'ok', 'refused' or 'failed'" in wrong.text


@pytest.fixture(scope="module")
def indexed(api):
    """A collection with two people, one of them a user."""
    people = lfw_people(2)
    api.client.post("/v1/collections", json={"collection_id": "inputs"}, headers=api.admin)
    ids = {}
    for person in people:
        response = api.index("inputs", lfw_image(person, 1), person, max_faces=1)
        assert response.status_code == 200, response.text
        ids[person] = response.json()["indexed"][0]["face"]["face_id"]
    api.client.post("/v1/collections/inputs/users", json={"user_id": "u"}, headers=api.operator)
    associated = api.client.post(
        "/v1/collections/inputs/users/u/faces",
        json={"face_ids": [ids[people[0]]]},
        headers=api.operator,
    )
    assert associated.status_code == 200, associated.text
    return people, ids


def test_search_by_face_id_takes_no_body_json_or_multipart(api, indexed) -> None:
    people, ids = indexed
    url = f"/v1/collections/inputs/faces/{ids[people[0]]}/search"
    bare = api.client.post(url, headers=api.operator)
    assert bare.status_code == 200, bare.text
    assert bare.json()["threshold"] == 80 and bare.json()["searched_face_id"] == ids[people[0]]
    as_json = api.client.post(url, json={"threshold": 0}, headers=api.operator)
    as_form = api.client.post(url, files={"threshold": (None, "0")}, headers=api.operator)
    for response in (as_json, as_form):
        assert response.status_code == 200, response.text
        assert ids[people[1]] in {m["face"]["face_id"] for m in response.json()["matches"]}
    wrong = api.client.post(url, json={"threshhold": 0}, headers=api.operator)
    assert wrong.status_code == 400 and "threshhold: not a field" in wrong.text


def test_a_misnamed_file_part_is_answered_with_the_name_expected(api, indexed) -> None:
    people, _ = indexed
    photo = lfw_image(people[0], 2).read_bytes()
    for url, expected in (
        ("/v1/collections/inputs/search", "'image'"),
        ("/v1/collections/inputs/faces", "'image'"),
        ("/v1/compare", "'source' and 'target'"),
    ):
        response = api.client.post(url, files={"file": photo}, headers=api.operator)
        assert response.status_code == 400, response.text
        message = response.json()["error"]["message"]
        assert "'file'" in message and expected in message


def test_matches_carry_a_status_and_landmarks_are_named(api, indexed) -> None:
    people, _ = indexed
    photo = lfw_image(people[0], 2).read_bytes()
    encoded = "data:image/jpeg;base64," + base64.encodebytes(photo).decode()  # line breaks
    compared = api.client.post(
        "/v1/compare",
        json={"source": encoded, "target": encoded, "threshold": 0},
        headers=api.operator,
    )
    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert body["matches"] and {m["status"] for m in body["matches"]} == {"candidate"}
    points = body["source_face"]["landmarks"]
    assert [p["type"] for p in points] == list(LANDMARK_NAMES)
    box = body["source_face"]["box"]
    assert all(box["left"] <= p["x"] <= box["left"] + box["width"] for p in points)
    users = api.client.post(
        "/v1/collections/inputs/users/search",
        json={"image": encoded, "user_match_threshold": 0},
        headers=api.operator,
    )
    assert users.status_code == 200, users.text
    assert [(m["user_id"], m["status"]) for m in users.json()["matches"]] == [("u", "candidate")]
    detected = api.client.post("/v1/detect", files={"image": photo}, headers=api.operator)
    assert [p["type"] for p in detected.json()["faces"][0]["landmarks"]] == list(LANDMARK_NAMES)
