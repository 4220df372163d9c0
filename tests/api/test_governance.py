"""Policies, consent and two-person review through the native API, on real faces."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import pytest

from faceledger.governance.report import SEARCHES, USES
from tests.api.conftest import Api, lfw_image, lfw_people, open_api
from tests.chromium import assert_drawn, assert_plain_words, screenshot, visible_text
from tests.webhooks import Collector

HOOK_SECRET = "review-hook-secret"
CASE = {"purpose": "robbery investigation", "case": "C-2026-0417", "legal_basis": "warrant"}


@pytest.fixture(scope="module")
def gov(tmp_path_factory, shared_engine, database):
    data_dir = tmp_path_factory.mktemp("gov")
    hooks = Collector()  # receives review outcomes
    services, client = open_api(
        data_dir, shared_engine, review_webhook_url=hooks.url, review_webhook_secret=HOOK_SECRET
    )
    with client:
        api = Api(client, data_dir)
        api.hooks = hooks
        api.library = api.key("operator")  # the server's default policy: photo-library
        api.investigator = api.key("operator", policy="investigative-lead")
        api.reviewers = [api.key("reviewer") for _ in range(2)]
        yield api
    services.close()


def post_image(api: Api, url: str, path, headers, **fields):
    with path.open("rb") as handle:
        return api.client.post(
            url,
            files={"image": handle},
            data={k: str(v) for k, v in fields.items()},
            headers=headers,
        )


def ledger(api: Api) -> list[dict]:
    # Repeated refusals within a minute are aggregated; write the pending aggregates first.
    api.client.app.state.services.refusals.flush(everything=True)
    response = api.client.get("/v1/ledger/events", params={"limit": 10_000}, headers=api.auditor)
    assert response.status_code == 200, response.text
    return [item["event"] for item in response.json()["events"]]


def test_keys_get_the_default_policy_and_admins_manage_policies(gov) -> None:
    listed = gov.client.get("/v1/keys", headers=gov.admin).json()["keys"]
    assert {k["policy"] for k in listed} >= {"photo-library", "investigative-lead", "test-open"}
    names = [p["name"] for p in gov.client.get("/v1/policies", headers=gov.admin).json()]
    assert names[:3] == ["photo-library", "access-control", "investigative-lead"]

    custom = {
        "name": "school-yearbook",
        "description": "yearbook photos, parents' consent",
        "operations": ["index_faces", "search_faces_by_image"],
        "min_threshold": 90,
        "max_results": 5,
        "consent_required_to_index": True,
    }
    assert gov.client.post("/v1/policies", json=custom, headers=gov.library).status_code == 403
    created = gov.client.post("/v1/policies", json=custom, headers=gov.admin)
    assert created.status_code == 201, created.text
    again = gov.client.post("/v1/policies", json=custom, headers=gov.admin)
    assert again.status_code == 409
    bad = gov.client.post(
        "/v1/policies", json={**custom, "name": "x", "min_threshold": 150}, headers=gov.admin
    )
    assert bad.status_code == 400
    yearbook = gov.key("operator", policy="school-yearbook")
    in_use = gov.client.delete("/v1/policies/school-yearbook", headers=gov.admin)
    assert in_use.status_code == 400 and "active key" in in_use.json()["error"]["message"]
    key_id = yearbook["Authorization"].split()[1].partition(".")[0]
    moved = gov.client.put(
        f"/v1/keys/{key_id}/policy", json={"policy": "photo-library"}, headers=gov.admin
    )
    assert moved.status_code == 200
    assert gov.client.delete("/v1/policies/school-yearbook", headers=gov.admin).status_code == 200
    events = ledger(gov)
    assert {"PutPolicy", "BindKeyPolicy", "DeletePolicy"} <= {e["operation"] for e in events}
    # The operator's attempt to create a policy is on the ledger as a refusal by role.
    (tried,) = [e for e in events if e["operation"] == "POST /v1/policies"]
    assert tried["outcome"] == "refused" and tried["results"]["kind"] == "role"


def test_enrolment_needs_consent_under_photo_library(gov) -> None:
    (name,) = lfw_people(1)
    assert (
        gov.client.post(
            "/v1/collections", json={"collection_id": "family"}, headers=gov.admin
        ).status_code
        == 201
    )
    url = "/v1/collections/family/faces"
    refused = post_image(gov, url, lfw_image(name, 1), gov.library, external_image_id="img1")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "POLICY_VIOLATION" and "consents" in error["message"]

    consent = {
        "subject_kind": "external_image",
        "subject": "img1",
        "consented_by": name,
        "document_reference": "release-001.pdf",
    }
    recorded = gov.client.post("/v1/collections/family/consents", json=consent, headers=gov.library)
    assert recorded.status_code == 201, recorded.text
    assert (
        post_image(gov, url, lfw_image(name, 1), gov.library, external_image_id="img1").status_code
        == 200
    )
    # Consent for img1 does not cover img2; withdrawn consent covers nothing.
    other = post_image(gov, url, lfw_image(name, 2), gov.library, external_image_id="img2")
    assert other.status_code == 403
    withdrawn = gov.client.delete(
        f"/v1/consents/{recorded.json()['consent_id']}", headers=gov.library
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_at"]
    assert (
        post_image(gov, url, lfw_image(name, 1), gov.library, external_image_id="img1").status_code
        == 403
    )

    refusals = [
        e
        for e in ledger(gov)
        if e["outcome"] == "refused"
        and e["results"]["kind"] == "policy"
        and "consent" in e["results"]["reason"]
    ]
    # The first as it happened, the repeats within the minute as one event with their count.
    assert sum(e["results"]["count"] for e in refusals) == 3
    assert refusals[0]["operation"] == "index_faces"
    assert all(e["results"]["operations"] == ["index_faces"] for e in refusals[1:])

    # The photo-library floor raises a low threshold instead of refusing it, and says so.
    found = post_image(
        gov, "/v1/collections/family/search", lfw_image(name, 2), gov.library, threshold=20
    )
    assert found.status_code == 200, found.text
    governance = found.json()["governance"]
    assert governance["policy"] == "photo-library"
    assert governance["threshold_requested"] == 20 and governance["threshold_applied"] == 80
    assert found.json()["threshold"] == 80


@pytest.fixture(scope="module")
def lineup(gov):
    """A gallery enrolled under the investigative-lead policy (a booking-photo collection)."""
    people = lfw_people(6)
    gov.client.post("/v1/collections", json={"collection_id": "bookings"}, headers=gov.admin)
    ids = {}
    for person in people:
        indexed = post_image(
            gov,
            "/v1/collections/bookings/faces",
            lfw_image(person, 1),
            gov.investigator,
            external_image_id=person,
            **CASE,
        )
        assert indexed.status_code == 200, indexed.text
        ids[person] = indexed.json()["indexed"][0]["face"]["face_id"]
    return people, ids


def test_investigative_lead_requires_case_basis_and_floor(gov, lineup) -> None:
    people, _ = lineup
    url = "/v1/collections/bookings/search"
    probe = lfw_image(people[0], 1)
    for missing in ("purpose", "case", "legal_basis"):
        fields = {k: v for k, v in CASE.items() if k != missing}
        refused = post_image(gov, url, probe, gov.investigator, threshold=99, **fields)
        assert refused.status_code == 403, missing
        assert missing.replace("_", " ") in refused.json()["error"]["message"]
    consent_basis = post_image(
        gov, url, probe, gov.investigator, threshold=99, **{**CASE, "legal_basis": "consent"}
    )
    assert consent_basis.status_code == 403
    below = post_image(gov, url, probe, gov.investigator, threshold=95, **CASE)
    assert below.status_code == 403 and "floor of 99" in below.json()["error"]["message"]
    compare = gov.client.post(
        "/v1/compare",
        files={"source": probe.open("rb"), "target": probe.open("rb")},
        data={"threshold": "99", **CASE},
        headers=gov.investigator,
    )
    assert compare.status_code == 403 and "does not allow compare_faces" in compare.text
    stranger = next(p for p in lfw_people(12) if p not in people)
    nobody = post_image(gov, url, lfw_image(stranger, 1), gov.investigator, threshold=99, **CASE)
    assert nobody.status_code == 200 and nobody.json()["matches"] == []
    assert nobody.json()["governance"]["review"]["status"] == "closed"  # nothing to review


def test_two_person_review(gov, lineup) -> None:
    people, ids = lineup
    found = post_image(
        gov,
        "/v1/collections/bookings/search",
        lfw_image(people[0], 1),
        gov.investigator,
        threshold=99,
        **CASE,
    )
    assert found.status_code == 200, found.text
    body = found.json()
    review = body["governance"]["review"]
    assert review["status"] == "unconfirmed" and review["reviewers_required"] == 2
    assert [m["status"] for m in body["matches"]] == ["unconfirmed"]
    assert body["matches"][0]["face"]["face_id"] == ids[people[0]]
    task_id, face_id = review["task_id"], ids[people[0]]

    task = gov.client.get(f"/v1/reviews/{task_id}", headers=gov.reviewers[0]).json()
    assert task["case"] == CASE["case"] and task["probe_sha256"] and task["status"] == "open"
    assert [c["face_id"] for c in task["candidates"]] == [face_id]
    assert task_id in [
        t["task_id"]
        for t in gov.client.get("/v1/reviews", headers=gov.reviewers[1]).json()["tasks"]
    ]

    url = f"/v1/reviews/{task_id}/decisions"
    confirm = {"face_id": face_id, "decision": "confirm", "reason": "same scar above the left eye"}
    # The requester cannot review its own search.
    assert gov.client.post(url, json=confirm, headers=gov.investigator).status_code == 403
    first = gov.client.post(url, json=confirm, headers=gov.reviewers[0])
    assert first.status_code == 200, first.text
    assert first.json()["candidates"][0]["status"] == "unconfirmed"  # one person is not enough
    twice = gov.client.post(url, json=confirm, headers=gov.reviewers[0])
    assert twice.status_code == 409  # and one reviewer cannot count twice
    second = gov.client.post(url, json=confirm, headers=gov.reviewers[1])
    assert second.status_code == 200
    done = second.json()
    assert done["candidates"][0]["status"] == "confirmed" and done["status"] == "closed"
    assert {d["reviewer_key_id"] for d in done["decisions"]} == {
        r["Authorization"].split()[1].partition(".")[0] for r in gov.reviewers
    }
    third = gov.key("reviewer")
    late = gov.client.post(url, json=confirm | {"decision": "reject"}, headers=third)
    assert late.status_code == 409 and "already confirmed" in late.json()["error"]["message"]
    events = ledger(gov)
    decided = [e for e in events if e["operation"] == "ReviewDecision" and e["outcome"] == "ok"]
    assert [e["results"]["candidate_status"] for e in decided][-2:] == ["unconfirmed", "confirmed"]
    # Each broken rule is on the ledger as a refused attempt, under the key that tried.
    refused = {
        (e["actor_key_id"], e["results"]["reason"])
        for e in events
        if e["outcome"] == "refused" and e["results"].get("kind") == "rule"
    }
    key_of = {
        name: h["Authorization"].split()[1].partition(".")[0]
        for name, h in (("first", gov.reviewers[0]), ("third", third))
    }
    assert (
        key_of["first"],
        "this reviewer has decided on this candidate already; another reviewer must",
    ) in refused
    assert (key_of["third"], "this candidate is already confirmed") in refused


def test_one_rejection_rejects_a_candidate(gov, lineup) -> None:
    people, ids = lineup
    found = post_image(
        gov,
        "/v1/collections/bookings/search",
        lfw_image(people[1], 1),
        gov.investigator,
        threshold=99,
        **CASE,
    ).json()
    task_id = found["governance"]["review"]["task_id"]
    url = f"/v1/reviews/{task_id}/decisions"
    face_id = ids[people[1]]
    gov.client.post(
        url,
        json={"face_id": face_id, "decision": "confirm", "reason": "looks alike"},
        headers=gov.reviewers[0],
    )
    rejected = gov.client.post(
        url,
        json={"face_id": face_id, "decision": "reject", "reason": "ear shape differs"},
        headers=gov.reviewers[1],
    ).json()
    assert rejected["candidates"][0]["status"] == "rejected"
    late = gov.client.post(
        url,
        json={"face_id": face_id, "decision": "confirm", "reason": "x" * 5},
        headers=gov.reviewers[0],
    )
    assert late.status_code == 409 and late.json()["error"]["code"] == "RULE_VIOLATION"
    no_reason = gov.client.post(
        url,
        json={"face_id": face_id, "decision": "confirm", "reason": ""},
        headers=gov.reviewers[1],
    )
    assert no_reason.status_code == 400


def test_accountability_report_matches_the_ledger(gov, lineup, tmp_path) -> None:
    # Runs after the tests above have seeded the ledger: enrolments, searches under three
    # policies, refusals, two review tasks decided one way and the other.
    today = dt.datetime.now(dt.UTC).date().isoformat()
    events = ledger(gov)
    response = gov.client.get(
        "/v1/reports/accountability", params={"from": today, "to": today}, headers=gov.auditor
    )
    assert response.status_code == 200, response.text
    report = response.json()

    uses = [e for e in events if e["operation"] in USES and e["outcome"] == "ok"]
    assert report["uses"]["total"] == len(uses) > 0
    for operation in ("IndexFaces", "SearchFacesByImage"):
        expected = sum(1 for e in uses if e["operation"] == operation)
        assert report["uses"]["by_operation"][operation] == expected
    by_policy = {}
    for e in uses:
        name = e["parameters"].get("policy", "(not recorded)")
        by_policy[name] = by_policy.get(name, 0) + 1
    assert report["uses"]["by_policy"] == by_policy
    assert report["uses"]["by_policy"]["investigative-lead"] >= 8
    refused = [e for e in events if e["outcome"] == "refused"]
    assert report["refused"]["total"] == sum(e["results"].get("count", 1) for e in refused)
    kinds = {}
    for e in refused:
        kind = e["results"]["kind"]
        kinds[kind] = kinds.get(kind, 0) + e["results"].get("count", 1)
    assert report["refused"]["by_kind"] == kinds
    assert kinds["policy"] >= 8 and kinds["role"] >= 2  # policy creation, own review
    searches = [e for e in uses if e["operation"] in SEARCHES]
    assert report["results"]["searches"] == len(searches)
    assert report["results"]["candidates_returned"] == sum(
        len(e["results"]["matches"]) for e in searches
    )
    assert report["results"]["thresholds_raised_to_floor"] >= 1  # photo-library's 20 -> 80

    review = report["review"]
    tasks = [e["results"]["review_task_id"] for e in searches if e["results"].get("review_task_id")]
    assert review["tasks"] == len(tasks) == 3 and review["open_tasks"] == 0  # one had no candidate
    assert review["confirmed"] == 1 and review["rejected"] == 1 and review["confirmed_share"] == 0.5
    assert review["hours_to_decision_median"] is not None
    decided = [e for e in events if e["operation"] == "ReviewDecision" and e["outcome"] == "ok"]
    assert len(decided) == 4

    names = [p["name"] for p in report["policies_in_force"]]
    assert names[:3] == ["photo-library", "access-control", "investigative-lead"]
    lead = report["policies_in_force"][2]
    assert lead["floor"] == 99 and lead["reviewers_required"] == 2 and "case" in lead["requires"]
    assert report["ledger"]["ok"] is True and report["ledger"]["events"] >= len(events)
    assert [c["operation"] for c in report["policy_changes"]].count("PutPolicy") >= 2

    page = gov.client.get(
        "/v1/reports/accountability",
        params={"from": today, "to": today, "format": "html"},
        headers=gov.auditor,
    )
    assert page.status_code == 200 and page.text.count("data:image/png;base64") == 3
    # It reads as a report: plain words, one number format; drawn by a real browser.
    text = visible_text(page.text)
    assert_plain_words(text)
    assert "Search faces by image 4" in text and "Refused by the key's use policy" in text
    assert "Threshold (similarity, 0-100) Count 99 3 80 1" in text
    (tmp_path / "accountability.html").write_text(page.text)
    assert_drawn(screenshot(tmp_path / "accountability.html", tmp_path / "accountability.png"))
    assert "Accountability report" in page.text and "never identifications" in page.text
    assert (
        gov.client.get(
            "/v1/reports/accountability", params={"from": today, "to": today}, headers=gov.library
        ).status_code
        == 403
    )
    last = [e["operation"] for e in ledger(gov)][-2:]
    assert last == ["AccountabilityReport", "GET /v1/reports/accountability"]  # then refused


def test_the_searcher_follows_its_own_review_tasks(gov, lineup) -> None:
    """The searching key learns each outcome (GET on its task, and the signed webhook); other
    operators see none of its tasks; the queue pages."""
    people, ids = lineup
    opened = []
    for person in people[2:5]:
        found = post_image(
            gov,
            "/v1/collections/bookings/search",
            lfw_image(person, 1),
            gov.investigator,
            threshold=99,
            **CASE,
        ).json()
        opened.append((found["governance"]["review"]["task_id"], ids[person]))
    other = gov.key("operator", policy="investigative-lead")
    mine = {t["task_id"] for t in walk_reviews(gov, gov.investigator)}
    assert {task_id for task_id, _ in opened} <= mine
    assert walk_reviews(gov, other) == []
    assert gov.client.get(f"/v1/reviews/{opened[0][0]}", headers=other).status_code == 404
    assert {t["task_id"] for t in walk_reviews(gov, gov.auditor)} >= mine  # auditors: all

    task_id, face_id = opened[0]
    for reviewer, reason in zip(gov.reviewers, ("same mole", "same ear shape"), strict=True):
        decided = gov.client.post(
            f"/v1/reviews/{task_id}/decisions",
            json={"face_id": face_id, "decision": "confirm", "reason": reason},
            headers=reviewer,
        )
        assert decided.status_code == 200, decided.text
    outcome = gov.client.get(f"/v1/reviews/{task_id}", headers=gov.investigator).json()
    assert outcome["status"] == "closed" and outcome["candidates"][0]["status"] == "confirmed"
    gov.client.app.state.services.courier.flush()
    closed = [(body, sig) for body, sig in gov.hooks.received if task_id in body.decode()]
    assert len(closed) == 1  # once, when it closed; not on the first confirmation
    body, signature = closed[0]
    assert signature == "sha256=" + hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    message = json.loads(body)
    assert message["type"] == "ReviewTaskClosed" and message["case"] == CASE["case"]
    assert [(c["face_id"], c["status"]) for c in message["candidates"]] == [(face_id, "confirmed")]


def walk_reviews(gov: Api, headers) -> list[dict]:
    tasks, token = [], None
    while True:
        params = {"status": "all", "max_results": 1, **({"next_token": token} if token else {})}
        page = gov.client.get("/v1/reviews", params=params, headers=headers)
        assert page.status_code == 200, page.text
        tasks += page.json()["tasks"]
        token = page.json()["next_token"]
        if token is None:
            return tasks
