"""Service results in Rekognition's output shapes (botocore's model is the reference).

Boxes and landmarks become shares of the image's width and height. Landmarks: we have five
points, so only the types they support are sent (eye corners, eye centres, nose); left and right
are as seen in the image. Attributes that infer age, gender or emotion are never produced.
"""

from __future__ import annotations

from typing import Any

from faceledger.service.results import DetectedFace, FaceRecord
from faceledger.vision import Box


def bounding_box(box: Box, width: int, height: int) -> dict[str, float]:
    width, height = max(width, 1), max(height, 1)
    return {
        "Width": box.width / width,
        "Height": box.height / height,
        "Left": box.left / width,
        "Top": box.top / height,
    }


def landmarks(
    points: tuple[tuple[float, float], ...], width: int, height: int
) -> list[dict[str, Any]]:
    right_outer, right_inner, left_outer, left_inner, nose = points
    named = {
        "leftEyeLeft": left_outer,
        "leftEyeRight": left_inner,
        "rightEyeLeft": right_inner,
        "rightEyeRight": right_outer,
        "eyeLeft": _mid(left_outer, left_inner),
        "eyeRight": _mid(right_inner, right_outer),
        "nose": nose,
    }
    return [
        {"Type": t, "X": x / max(width, 1), "Y": y / max(height, 1)} for t, (x, y) in named.items()
    ]


def _mid(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return (a[0] + b[0]) / 2, (a[1] + b[1]) / 2


def face_detail(face: DetectedFace, width: int, height: int) -> dict[str, Any]:
    q = face.quality
    return {
        "BoundingBox": bounding_box(face.box, width, height),
        "Landmarks": landmarks(face.landmarks, width, height),
        "Pose": {"Roll": q.pose.roll, "Yaw": q.pose.yaw, "Pitch": q.pose.pitch},
        "Quality": {"Brightness": q.brightness, "Sharpness": q.sharpness},
        "Confidence": face.confidence,
    }


def stored_match_face(match: dict[str, Any]) -> dict[str, Any]:
    """A video search candidate's stored face (ids only: its box is in another image)."""
    out: dict[str, Any] = {"FaceId": match["face_id"], "Confidence": 100.0}
    if match.get("external_image_id"):
        out["ExternalImageId"] = match["external_image_id"]
    if match.get("user_id"):
        out["UserId"] = match["user_id"]
    return out


def stored_face(record: FaceRecord, model_version: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "FaceId": record.face_id,
        "BoundingBox": bounding_box(record.box, record.image_width, record.image_height),
        "ImageId": record.image_id,
        "Confidence": record.confidence,
        "IndexFacesModelVersion": model_version,
    }
    if record.external_image_id is not None:
        out["ExternalImageId"] = record.external_image_id
    if record.user_id is not None:
        out["UserId"] = record.user_id
    return out
