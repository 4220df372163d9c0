"""Unchanged boto3 code against a real faceledger server (uvicorn on loopback), no mocks."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import lfw_image, lfw_people
from tests.conftest import DLIB_FACES, EXAMPLES, require
from tests.rekognition.shapes import check


def image(path) -> dict[str, bytes]:
    return {"Bytes": require(path).read_bytes()}


@pytest.fixture(scope="module")
def gallery(rek, admin_rek) -> dict[str, str]:
    """Twelve LFW people indexed by their first photo; external id = name."""
    check("CreateCollection", admin_rek.create_collection(CollectionId="gallery"))
    faces = {}
    for name in lfw_people(12):
        response = check(
            "IndexFaces",
            rek.index_faces(
                CollectionId="gallery",
                Image=image(lfw_image(name, 1)),
                ExternalImageId=name,
                MaxFaces=1,
                QualityFilter="AUTO",
            ),
        )
        faces[name] = response["FaceRecords"][0]["Face"]["FaceId"]
    return faces


def test_collections(rek, admin_rek, gallery) -> None:
    described = check("DescribeCollection", rek.describe_collection(CollectionId="gallery"))
    assert described["FaceCount"] == 12 and described["UserCount"] == 0
    assert described["CollectionARN"].endswith("collection/gallery")
    # Rekognition's CreateCollection names no model: the server's default (SFace in int8).
    assert described["FaceModelVersion"] == "sface-2021dec-int8/1.0"
    for i in range(3):
        created = admin_rek.create_collection(CollectionId=f"extra-{i}")
        assert created["FaceModelVersion"] == "sface-2021dec-int8/1.0"
    models = {}
    token = None
    while True:
        kwargs = {"MaxResults": 2} | ({"NextToken": token} if token else {})
        page = check("ListCollections", rek.list_collections(**kwargs))
        assert len(page["CollectionIds"]) <= 2
        assert len(page["FaceModelVersions"]) == len(page["CollectionIds"])
        models |= dict(zip(page["CollectionIds"], page["FaceModelVersions"], strict=True))
        token = page.get("NextToken")
        if not token:
            break
    assert {"gallery", "extra-0", "extra-1", "extra-2"} <= set(models)
    assert models["gallery"] == "sface-2021dec-int8/1.0"
    listed = check("ListFaces", rek.list_faces(CollectionId="gallery", MaxResults=1))
    assert listed["FaceModelVersion"] == "sface-2021dec-int8/1.0"
    check("DeleteCollection", admin_rek.delete_collection(CollectionId="extra-0"))
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.describe_collection(CollectionId="extra-0")
    with pytest.raises(admin_rek.exceptions.ResourceAlreadyExistsException):
        admin_rek.create_collection(CollectionId="gallery")


def test_index_faces_reports_unindexed_faces(rek, admin_rek) -> None:
    admin_rek.create_collection(CollectionId="crowd")
    response = check(
        "IndexFaces",
        rek.index_faces(
            CollectionId="crowd",
            Image=image(DLIB_FACES / "2008_004176.jpg"),
            MaxFaces=2,
            QualityFilter="NONE",
        ),
    )
    assert len(response["FaceRecords"]) == 2
    assert [u["Reasons"] for u in response["UnindexedFaces"]] == [["EXCEEDS_MAX_FACES"]] * 5
    record = response["FaceRecords"][0]
    box = record["Face"]["BoundingBox"]
    assert 0 <= box["Left"] <= 1 and 0 < box["Width"] < 1
    assert {lm["Type"] for lm in record["FaceDetail"]["Landmarks"]} >= {
        "eyeLeft",
        "eyeRight",
        "nose",
    }
    filtered = check(
        "IndexFaces",
        rek.index_faces(CollectionId="crowd", Image=image(DLIB_FACES / "2008_004176.jpg")),
    )
    assert filtered["FaceRecords"] == []
    assert all("SMALL_BOUNDING_BOX" in u["Reasons"] for u in filtered["UnindexedFaces"])


def test_search_faces_by_image_finds_each_person(rek, gallery) -> None:
    right = 0
    for name in gallery:
        response = check(
            "SearchFacesByImage",
            rek.search_faces_by_image(
                CollectionId="gallery",
                Image=image(lfw_image(name, 2)),
                FaceMatchThreshold=50,
                MaxFaces=3,
            ),
        )
        matches = response["FaceMatches"]
        right += bool(matches) and matches[0]["Face"]["ExternalImageId"] == name
        assert all(m["Similarity"] >= 50 for m in matches) and len(matches) <= 3
    assert right >= 11  # measured: 12 of 12


def test_search_faces_by_face_id(rek, gallery) -> None:
    face_id = next(iter(gallery.values()))
    response = check(
        "SearchFaces",
        rek.search_faces(CollectionId="gallery", FaceId=face_id, FaceMatchThreshold=0, MaxFaces=4),
    )
    assert response["SearchedFaceId"] == face_id
    assert len(response["FaceMatches"]) == 4
    assert face_id not in [m["Face"]["FaceId"] for m in response["FaceMatches"]]


def test_list_faces_paginates(rek, gallery) -> None:
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"MaxResults": 5} | ({"NextToken": token} if token else {})
        page = check("ListFaces", rek.list_faces(CollectionId="gallery", **kwargs))
        seen += [f["FaceId"] for f in page["Faces"]]
        pages += 1
        if not (token := page.get("NextToken")):
            break
    assert pages == 3 and sorted(seen) == sorted(gallery.values())
    with pytest.raises(rek.exceptions.InvalidPaginationTokenException):
        rek.list_faces(CollectionId="gallery", NextToken="%%%not-a-token")


def test_compare_and_detect(rek) -> None:
    compared = check(
        "CompareFaces",
        rek.compare_faces(
            SourceImage=image(EXAMPLES / "obama.jpg"),
            TargetImage=image(EXAMPLES / "knn_examples" / "test" / "obama_and_biden.jpg"),
            SimilarityThreshold=90,
        ),
    )
    assert len(compared["FaceMatches"]) == 1 and compared["FaceMatches"][0]["Similarity"] > 90
    assert len(compared["UnmatchedFaces"]) == 2
    detected = check(
        "DetectFaces",
        rek.detect_faces(Image=image(EXAMPLES / "two_people.jpg"), Attributes=["ALL"]),
    )
    assert len(detected["FaceDetails"]) == 2
    detail = detected["FaceDetails"][0]
    # By design, no age, gender or emotion, whatever the attributes asked for.
    assert not {"AgeRange", "Gender", "Emotions", "Smile"} & set(detail)
    assert {"BoundingBox", "Pose", "Quality", "Confidence", "Landmarks"} <= set(detail)


def test_delete_faces(rek, admin_rek) -> None:
    admin_rek.create_collection(CollectionId="deleting")
    face_id = rek.index_faces(CollectionId="deleting", Image=image(EXAMPLES / "obama.jpg"))[
        "FaceRecords"
    ][0]["Face"]["FaceId"]
    response = check(
        "DeleteFaces",
        rek.delete_faces(
            CollectionId="deleting", FaceIds=[face_id, "00000000-0000-4000-8000-000000000000"]
        ),
    )
    assert response["DeletedFaces"] == [face_id]
    assert response["UnsuccessfulFaceDeletions"][0]["Reasons"] == ["FACE_NOT_FOUND"]


def test_users(rek, admin_rek) -> None:
    admin_rek.create_collection(CollectionId="people")
    ids = [
        rek.index_faces(
            CollectionId="people", Image=image(lfw_image("George_W_Bush", n)), MaxFaces=1
        )["FaceRecords"][0]["Face"]["FaceId"]
        for n in (1, 2, 3)
    ]
    powell = rek.index_faces(
        CollectionId="people", Image=image(lfw_image("Colin_Powell", 1)), MaxFaces=1
    )["FaceRecords"][0]["Face"]["FaceId"]
    check("CreateUser", rek.create_user(CollectionId="people", UserId="gwb"))
    with pytest.raises(rek.exceptions.ConflictException):
        rek.create_user(CollectionId="people", UserId="gwb")
    associated = check(
        "AssociateFaces", rek.associate_faces(CollectionId="people", UserId="gwb", FaceIds=ids[:2])
    )
    assert {f["FaceId"] for f in associated["AssociatedFaces"]} == set(ids[:2])
    assert associated["UserStatus"] == "ACTIVE"
    refused = check(
        "AssociateFaces",
        rek.associate_faces(
            CollectionId="people", UserId="gwb", FaceIds=[powell], UserMatchThreshold=75
        ),
    )
    assert refused["UnsuccessfulFaceAssociations"][0]["Reasons"] == ["LOW_MATCH_CONFIDENCE"]
    for n in range(3):
        rek.create_user(CollectionId="people", UserId=f"u{n}")
    users, token = [], None
    while True:
        kwargs = {"MaxResults": 2} | ({"NextToken": token} if token else {})
        page = check("ListUsers", rek.list_users(CollectionId="people", **kwargs))
        users += [u["UserId"] for u in page["Users"]]
        if not (token := page.get("NextToken")):
            break
    assert users == ["gwb", "u0", "u1", "u2"]
    by_image = check(
        "SearchUsersByImage",
        rek.search_users_by_image(
            CollectionId="people", Image=image(lfw_image("George_W_Bush", 4))
        ),
    )
    assert by_image["UserMatches"][0]["User"]["UserId"] == "gwb"
    assert "FaceDetail" in by_image["SearchedFace"]
    by_face = check("SearchUsers", rek.search_users(CollectionId="people", FaceId=ids[2]))
    assert [m["User"]["UserId"] for m in by_face["UserMatches"]] == ["gwb"]
    assert by_face["SearchedFace"]["FaceId"] == ids[2]
    by_user = check("SearchUsers", rek.search_users(CollectionId="people", UserId="gwb"))
    assert by_user["SearchedUser"]["UserId"] == "gwb"
    gone = check(
        "DisassociateFaces",
        rek.disassociate_faces(CollectionId="people", UserId="gwb", FaceIds=[ids[0]]),
    )
    assert gone["DisassociatedFaces"] == [{"FaceId": ids[0]}]
    check("DeleteUser", rek.delete_user(CollectionId="people", UserId="u0"))
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.delete_user(CollectionId="people", UserId="u0")


def test_modelled_errors(server, rek, gallery, tmp_path) -> None:
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.search_faces_by_image(
            CollectionId="gallery", Image=image(DLIB_FACES / "dogs.jpg")
        )  # no face
    with pytest.raises(rek.exceptions.InvalidImageFormatException):
        rek.detect_faces(Image={"Bytes": b"GIF89a but not really"})
    big = tmp_path / "big.bin"
    big.write_bytes(b"\xff\xd8\xff" + b"\0" * (server.settings.max_image_bytes + 10))
    with pytest.raises(rek.exceptions.ImageTooLargeException):
        rek.detect_faces(Image={"Bytes": big.read_bytes()})
    with pytest.raises(rek.exceptions.InvalidS3ObjectException):
        rek.detect_faces(Image={"S3Object": {"Bucket": "bucket", "Name": "x.jpg"}})
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.search_faces(CollectionId="gallery", FaceId="00000000-0000-4000-8000-000000000000")
    with pytest.raises(rek.exceptions.InvalidParameterException, match="face id"):
        rek.search_faces(CollectionId="gallery", FaceId="no-such-face")
    with pytest.raises(rek.exceptions.AccessDeniedException):
        rek.create_collection(CollectionId="operators-cannot")  # wrong role


def test_s3_objects_from_a_local_bucket_directory(tmp_path) -> None:
    from tests.rekognition.conftest import Server

    bucket = tmp_path / "buckets" / "photos"
    bucket.mkdir(parents=True)
    (bucket / "obama.jpg").write_bytes(require(EXAMPLES / "obama.jpg").read_bytes())
    (tmp_path / "secret.jpg").write_bytes(b"outside")
    with Server(tmp_path / "data", s3_bucket_dir=tmp_path / "buckets") as running:
        client = running.client()
        found = client.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": "obama.jpg"}})
        assert len(found["FaceDetails"]) == 1
        with pytest.raises(client.exceptions.InvalidS3ObjectException):
            client.detect_faces(
                Image={"S3Object": {"Bucket": "photos", "Name": "../../secret.jpg"}}
            )
        with pytest.raises(client.exceptions.InvalidS3ObjectException):
            client.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": "missing.jpg"}})


def test_rate_limit(tmp_path) -> None:
    from tests.rekognition.conftest import Server

    # One request per 10 s: the first passes, the second (however slow the machine) does not.
    with Server(tmp_path, aws_rate_limit=0.1) as running:
        client = running.client()
        assert "CollectionIds" in client.list_collections()
        with pytest.raises(client.exceptions.ProvisionedThroughputExceededException):
            client.list_collections()
        other = running.client()  # the limit is per access key
        assert "CollectionIds" in other.list_collections()


def test_calls_land_on_the_ledger_with_the_keys_purpose(server, rek, gallery) -> None:
    header_client = server.client()

    def add_purpose(request, **_):
        request.headers["X-Faceledger-Purpose"] = "case 17 lead check"

    header_client.meta.events.register("before-sign.rekognition.*", add_purpose)
    header_client.search_faces_by_image(
        CollectionId="gallery", Image=image(lfw_image(next(iter(gallery)), 2))
    )
    from faceledger.service.auth import Actor, Role
    from faceledger.service.common import Request
    from faceledger.service.ledger import ledger_events, verify_ledger

    request = Request(Actor("test", Role.LOCAL))
    events = [e["event"] for e in ledger_events(server.services, request)]
    searches = [e for e in events if e["operation"] == "SearchFacesByImage"]
    assert any(e["purpose"] == "rekognition tests" for e in searches)  # the key's binding
    assert searches[-1]["purpose"] == "case 17 lead check"  # the header wins
    assert searches[-1]["image_sha256"] and searches[-1]["results"]["matches"]
    assert "Bytes" not in json.dumps(events)
    assert verify_ledger(server.services, request).ok
