"""Use policies on the Rekognition endpoint: unchanged boto3 calls, rules from the key's binding
or from X-Faceledger-* headers."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from faceledger.service import consent, ledger
from tests.api.conftest import lfw_image, lfw_people
from tests.rekognition.conftest import LOCAL


def image(path) -> dict[str, bytes]:
    return {"Bytes": path.read_bytes()}


def with_headers(client, headers: dict[str, str]):
    def add(request, **_):
        for name, value in headers.items():
            request.headers[name] = value

    client.meta.events.register("before-sign.rekognition.*", add)
    return client


def test_photo_library_indexing_needs_consent_on_record(server, admin_rek) -> None:
    library = server.client(server.aws_key(policy=None))  # the default policy
    admin_rek.create_collection(CollectionId="club")
    (name,) = lfw_people(1)
    with pytest.raises(ClientError) as refused:
        library.index_faces(CollectionId="club", Image=image(lfw_image(name, 1)))
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "consent" in refused.value.response["Error"]["Message"]
    # Consent for the whole collection, collected by the club's own process: the unchanged
    # IndexFaces call now works.
    consent.record_consent(
        server.services,
        LOCAL,
        "club",
        subject_kind="collection",
        subject=None,
        consented_by="club membership form",
        document_reference="club/consent-2026.pdf",
    )
    indexed = library.index_faces(CollectionId="club", Image=image(lfw_image(name, 1)))
    assert len(indexed["FaceRecords"]) == 1
    found = library.search_faces_by_image(
        CollectionId="club", Image=image(lfw_image(name, 2)), FaceMatchThreshold=50
    )
    assert found["FaceMatches"]  # botocore ignores the extra member below
    raw = library.search_faces_by_image(CollectionId="club", Image=image(lfw_image(name, 2)))
    assert raw["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_investigative_lead_through_boto3(server, admin_rek) -> None:
    people = lfw_people(3)
    admin_rek.create_collection(CollectionId="leads")
    key = server.aws_key(policy="investigative-lead", purpose="fraud inquiry", case="C-88")
    investigator = server.client(key)
    with pytest.raises(ClientError) as no_basis:
        investigator.index_faces(CollectionId="leads", Image=image(lfw_image(people[0], 1)))
    assert "legal basis" in no_basis.value.response["Error"]["Message"]

    investigator = with_headers(server.client(key), {"X-Faceledger-Legal-Basis": "court_order"})
    for person in people:
        investigator.index_faces(
            CollectionId="leads", Image=image(lfw_image(person, 1)), ExternalImageId=person
        )
    with pytest.raises(ClientError) as low:
        investigator.search_faces_by_image(
            CollectionId="leads", Image=image(lfw_image(people[0], 1)), FaceMatchThreshold=80
        )
    assert "floor of 99" in low.value.response["Error"]["Message"]

    captured: dict = {}
    investigator.meta.events.register(
        "after-call.rekognition.SearchFacesByImage",
        lambda http_response, **_: captured.update(json.loads(http_response.content)),
    )
    found = investigator.search_faces_by_image(
        CollectionId="leads", Image=image(lfw_image(people[0], 1)), FaceMatchThreshold=99
    )
    assert [m["Face"]["ExternalImageId"] for m in found["FaceMatches"]] == [people[0]]
    governance = captured["FaceledgerGovernance"]
    assert (
        governance["Policy"] == "investigative-lead" and governance["LegalBasis"] == "court_order"
    )
    assert governance["Review"]["Status"] == "unconfirmed"
    assert governance["Review"]["ReviewersRequired"] == 2

    # The key's case binding is on the ledger with the search; a header overrides it.
    overriding = with_headers(
        server.client(key),
        {"X-Faceledger-Legal-Basis": "warrant", "X-Faceledger-Case": "C-99"},
    )
    overriding.search_faces_by_image(
        CollectionId="leads", Image=image(lfw_image(people[1], 1)), FaceMatchThreshold=99.5
    )
    events = [
        item["event"]
        for item in ledger.ledger_events(server.services, LOCAL)
        if item["event"]["operation"] == "SearchFacesByImage"
    ]
    assert [e["parameters"]["case"] for e in events[-2:]] == ["C-88", "C-99"]
    assert events[-1]["purpose"] == "fraud inquiry"
