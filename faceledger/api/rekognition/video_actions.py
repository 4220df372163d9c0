"""Rekognition Video's face operations on stored video: StartFaceDetection, GetFaceDetection,
StartFaceSearch, GetFaceSearch. ``Video.S3Object`` names a file in a local bucket; jobs run as
the native API's do (faceledger.service.video)."""

from __future__ import annotations

from typing import Any

from faceledger.service import video
from faceledger.service.buckets import resolve_object
from faceledger.vision import Box

from .actions import Call
from .shapes import bounding_box, landmarks, stored_match_face


def _source(c: Call) -> video.VideoSource:
    s3 = c.need("Video").get("S3Object") or {}
    return video.VideoSource(
        resolve_object(c.services, s3.get("Bucket"), s3.get("Name")), s3["Bucket"], s3["Name"]
    )


def _start(c: Call, kind: str) -> dict[str, Any]:
    channel = c.get("NotificationChannel") or {}
    job_id = video.start_job(
        c.services,
        c.request,
        kind,
        _source(c),
        collection_id=c.get("CollectionId"),
        threshold=c.get("FaceMatchThreshold", 80.0),
        job_tag=c.get("JobTag"),
        client_request_token=c.get("ClientRequestToken"),
        notify_topic=channel.get("SNSTopicArn"),
    )
    return {"JobId": job_id}


def start_face_detection(c: Call) -> dict[str, Any]:
    return _start(c, "detect")


def start_face_search(c: Call) -> dict[str, Any]:
    return _start(c, "search")


def _page(c: Call, sort_by: str = "TIMESTAMP") -> video.JobPage:
    return video.get_job(
        c.services,
        c.request,
        c.need("JobId"),
        max_results=c.get("MaxResults") or 1000,
        next_token=c.get("NextToken"),
        sort_by=sort_by,
    )


def _header(page: video.JobPage) -> dict[str, Any]:
    job = page.job
    meta = job.metadata_ or {}
    out: dict[str, Any] = {
        "JobStatus": job.status,
        "JobId": job.job_id,
        "Video": {"S3Object": {"Bucket": job.video["bucket"], "Name": job.video["name"]}},
        "VideoMetadata": {
            "Codec": meta.get("codec", ""),
            "DurationMillis": meta.get("duration_ms", 0),
            "Format": meta.get("format", ""),
            "FrameRate": meta.get("frame_rate", 0.0),
            "FrameHeight": meta.get("height", 0),
            "FrameWidth": meta.get("width", 0),
        },
    }
    if job.status_message:
        out["StatusMessage"] = job.status_message
    if job.parameters.get("job_tag"):
        out["JobTag"] = job.parameters["job_tag"]
    if page.next_token:
        out["NextToken"] = page.next_token
    return out


def _detail(face: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    box = face["box"]
    return {
        "BoundingBox": bounding_box(
            Box(box["left"], box["top"], box["width"], box["height"]), width, height
        ),
        "Landmarks": landmarks(tuple(tuple(p) for p in face["landmarks"]), width, height),
        "Pose": {
            "Roll": face["pose"]["roll"],
            "Yaw": face["pose"]["yaw"],
            "Pitch": face["pose"]["pitch"],
        },
        "Quality": {
            "Brightness": face["quality"]["brightness"],
            "Sharpness": face["quality"]["sharpness"],
        },
        "Confidence": face["confidence"],
    }


def get_face_detection(c: Call) -> dict[str, Any]:
    page = _page(c)
    meta = page.job.metadata_ or {}
    w, h = meta.get("width", 1), meta.get("height", 1)
    return {
        **_header(page),
        "Faces": [
            {"Timestamp": r["timestamp_ms"], "Face": _detail(r["face"], w, h)} for r in page.results
        ],
    }


def get_face_search(c: Call) -> dict[str, Any]:
    page = _page(c, c.get("SortBy", "TIMESTAMP"))
    meta = page.job.metadata_ or {}
    w, h = meta.get("width", 1), meta.get("height", 1)
    persons = []
    for r in page.results:
        detail = _detail(r["face"], w, h)
        persons.append(
            {
                "Timestamp": r["timestamp_ms"],
                "Person": {
                    "Index": r["person_index"],
                    "BoundingBox": detail["BoundingBox"],
                    "Face": detail,
                },
                "FaceMatches": [
                    {"Similarity": m["similarity"], "Face": stored_match_face(m)}
                    for m in r.get("matches", [])
                ],
            }
        )
    return {**_header(page), "Persons": persons}


VIDEO_ACTIONS = {
    "StartFaceDetection": start_face_detection,
    "GetFaceDetection": get_face_detection,
    "StartFaceSearch": start_face_search,
    "GetFaceSearch": get_face_search,
}
