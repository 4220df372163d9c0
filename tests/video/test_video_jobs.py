"""Stored-video jobs through boto3's Rekognition Video operations, on the real clips."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import shutil
import time

import pytest
from PIL import Image

from faceledger.governance.policies import DEFAULT_POLICIES, OPERATIONS
from faceledger.imaging.video import frames
from tests.conftest import DATA, require
from tests.rekognition.conftest import Server
from tests.webhooks import Collector

VIDEOS = DATA / "videos"
ROLE = "arn:aws:iam::123456789012:role/rekognition"


FACENET = "facenet-pytorch-video.mp4"
HAMILTON = "short_hamilton_clip.mp4"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require(VIDEOS / FACENET)
    buckets = tmp_path_factory.mktemp("buckets")
    (buckets / "clips").mkdir()
    for name in (FACENET, HAMILTON):
        shutil.copy(VIDEOS / name, buckets / "clips" / name)
    # Cut at a tenth: its index still declares 139 s, its frames stop after about 14.
    data = (VIDEOS / "one-by-one-person-detection.mp4").read_bytes()
    (buckets / "clips" / "damaged.mp4").write_bytes(data[: len(data) // 10])
    hooks = Collector()
    topic = "arn:aws:sns:us-east-1:123456789012:video-done"
    webhooks = json.dumps({topic: {"url": hooks.url, "secret": "hook-secret"}})
    with Server(
        tmp_path_factory.mktemp("video"), s3_bucket_dir=buckets, sns_webhooks=webhooks
    ) as running:
        running.hooks, running.topic = hooks, topic
        running.server_rek = running.client(running.aws_key(purpose="video tests"))
        running.client(running.aws_key("admin")).create_collection(CollectionId="cast")
        yield running


def frame_jpeg(name: str, at_ms: int) -> bytes:
    frame = next(f for f in frames(VIDEOS / name, 5) if f.timestamp_ms >= at_ms)
    buffer = io.BytesIO()
    Image.fromarray(frame.rgb).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def wait(rek, operation: str, job_id: str, **extra) -> dict:
    deadline = time.monotonic() + 300
    while True:
        response = getattr(rek, operation)(JobId=job_id, **extra)
        if response["JobStatus"] != "IN_PROGRESS":
            return response
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.5)


def video(name: str) -> dict:
    return {"S3Object": {"Bucket": "clips", "Name": name}}


def test_search_finds_the_enrolled_people_at_the_right_times(server) -> None:
    rek = server.server_rek
    enrolled = rek.index_faces(
        CollectionId="cast",
        Image={"Bytes": frame_jpeg(FACENET, 1000)},
        ExternalImageId="frame-1s",
        MaxFaces=10,
    )["FaceRecords"]
    assert len(enrolled) >= 2
    ids = {r["Face"]["FaceId"] for r in enrolled}
    job = rek.start_face_search(Video=video(FACENET), CollectionId="cast", JobTag="test")
    result = wait(rek, "get_face_search", job["JobId"])
    assert result["JobStatus"] == "SUCCEEDED", result.get("StatusMessage")
    meta = result["VideoMetadata"]
    assert (meta["Codec"], meta["FrameWidth"], meta["FrameHeight"]) == ("h264", 1920, 1080)
    assert meta["DurationMillis"] == 4200 and meta["FrameRate"] == 25.0
    persons = result["Persons"]
    assert all("FaceMatches" in p for p in persons)  # present on every person, maybe empty
    found = {m["Face"]["FaceId"] for p in persons for m in p["FaceMatches"]}
    assert found >= ids  # every enrolled face is found in the clip it came from
    at_one_second = [p for p in persons if p["Timestamp"] == 1000]
    assert ids <= {m["Face"]["FaceId"] for p in at_one_second for m in p["FaceMatches"]}
    assert all(p["Timestamp"] % 200 == 0 for p in persons)  # sampled at 5 per second
    assert result["JobTag"] == "test"

    by_index = wait(rek, "get_face_search", job["JobId"], SortBy="INDEX")["Persons"]
    assert [p["Person"]["Index"] for p in by_index] == sorted(
        p["Person"]["Index"] for p in by_index
    )
    assert [p["Timestamp"] for p in persons] == sorted(p["Timestamp"] for p in persons)
    paged, token = [], None
    while True:
        page = rek.get_face_search(
            JobId=job["JobId"], MaxResults=7, **({"NextToken": token} if token else {})
        )
        paged += page["Persons"]
        token = page.get("NextToken")
        if not token:
            break
    assert paged == persons


def test_no_one_is_matched_at_the_floor_in_a_clip_they_are_not_in(server) -> None:
    rek = server.server_rek
    job = rek.start_face_search(Video=video(HAMILTON), CollectionId="cast", FaceMatchThreshold=99)
    result = wait(rek, "get_face_search", job["JobId"])
    assert result["JobStatus"] == "SUCCEEDED"
    assert result["Persons"]  # there are people in it...
    assert all(p["FaceMatches"] == [] for p in result["Persons"])  # ...none of them enrolled


def test_face_detection_and_idempotent_starts(server) -> None:
    rek = server.server_rek
    first = rek.start_face_detection(Video=video(FACENET), ClientRequestToken="detect-1")
    again = rek.start_face_detection(Video=video(FACENET), ClientRequestToken="detect-1")
    assert first["JobId"] == again["JobId"]
    with pytest.raises(rek.exceptions.IdempotentParameterMismatchException):
        rek.start_face_detection(Video=video(HAMILTON), ClientRequestToken="detect-1")
    result = wait(rek, "get_face_detection", first["JobId"])
    assert result["JobStatus"] == "SUCCEEDED"
    faces = result["Faces"]
    assert len({f["Timestamp"] for f in faces}) >= 15
    box = faces[0]["Face"]["BoundingBox"]
    assert 0 <= box["Left"] <= 1 and 0 < box["Width"] < 1


def test_bad_videos_are_refused_or_fail_clearly(server) -> None:
    rek = server.server_rek
    with pytest.raises(rek.exceptions.InvalidS3ObjectException):
        rek.start_face_detection(Video={"S3Object": {"Bucket": "clips", "Name": "../../x.mp4"}})
    with pytest.raises(rek.exceptions.InvalidParameterException, match="not mapped"):
        rek.start_face_detection(
            Video=video(FACENET),
            NotificationChannel={
                "SNSTopicArn": "arn:aws:sns:us-east-1:123456789012:other",
                "RoleArn": ROLE,
            },
        )
    with pytest.raises(rek.exceptions.InvalidParameterException, match="SNS topic ARN"):
        rek.start_face_detection(
            Video=video(FACENET), NotificationChannel={"SNSTopicArn": "t", "RoleArn": ROLE}
        )
    (server.settings.s3_bucket_dir / "clips" / "not-a-video.mp4").write_bytes(b"\x00" * 4096)
    with pytest.raises(rek.exceptions.InvalidParameterException, match="not a video"):
        rek.start_face_detection(Video=video("not-a-video.mp4"))
    job = rek.start_face_detection(Video=video("damaged.mp4"))
    result = wait(rek, "get_face_detection", job["JobId"])
    assert result["JobStatus"] == "FAILED"
    assert "damaged" in result["StatusMessage"] and "frame" in result["StatusMessage"]
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.get_face_detection(JobId="no-such-job")


def test_completion_goes_to_the_mapped_webhook_signed(server) -> None:
    rek = server.server_rek
    job = rek.start_face_detection(
        Video=video(HAMILTON),
        JobTag="hooked",
        NotificationChannel={"SNSTopicArn": server.topic, "RoleArn": ROLE},
    )
    wait(rek, "get_face_detection", job["JobId"])
    deadline = time.monotonic() + 30
    while not server.hooks.received and time.monotonic() < deadline:
        time.sleep(0.1)
    ((body, signature),) = server.hooks.received
    expected = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    envelope = json.loads(body)
    message = json.loads(envelope["Message"])
    assert envelope["TopicArn"] == server.topic
    assert message["JobId"] == job["JobId"] and message["Status"] == "SUCCEEDED"
    assert message["API"] == "StartFaceDetection" and message["JobTag"] == "hooked"
    assert message["Video"] == {"S3ObjectName": HAMILTON, "S3Bucket": "clips"}


def test_video_search_in_the_shipped_policies() -> None:
    assert "search_video" in DEFAULT_POLICIES["photo-library"].operations
    assert "search_video" in DEFAULT_POLICIES["investigative-lead"].operations
    assert "search_video" not in DEFAULT_POLICIES["access-control"].operations
    assert "watch_stream" in OPERATIONS
    assert all("watch_stream" not in p.operations for p in DEFAULT_POLICIES.values())
