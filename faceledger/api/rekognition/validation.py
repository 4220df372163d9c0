"""Rekognition request validation, before any work: the members, types, ranges, patterns and
enums of botocore's model for each action (botocore checks some of these on the client; the
server checks all of them, since not every client is botocore). Errors name the member and what
was expected, never a Python type."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from faceledger.errors import InvalidParameterError

Check = Callable[[str, Any], None]

COLLECTION_ID = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
USER_ID = re.compile(r"^[a-zA-Z0-9_.\-:]{1,128}$")
EXTERNAL_IMAGE_ID = re.compile(r"^[a-zA-Z0-9_.\-:]{1,255}$")
FACE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CLIENT_TOKEN = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")
BUCKET = re.compile(r"^[0-9A-Za-z.\-_]{3,255}$")
QUALITY = ("NONE", "AUTO", "LOW", "MEDIUM", "HIGH")
ATTRIBUTES = (
    "DEFAULT",
    "ALL",
    "AGE_RANGE",
    "BEARD",
    "EMOTIONS",
    "EYE_DIRECTION",
    "EYEGLASSES",
    "EYES_OPEN",
    "GENDER",
    "MOUTH_OPEN",
    "MUSTACHE",
    "FACE_OCCLUDED",
    "SMILE",
    "SUNGLASSES",
)


def _fail(name: str, expected: str, value: Any) -> InvalidParameterError:
    shown = repr(value) if isinstance(value, str | int | float | bool) else _kind(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InvalidParameterError(f"{name} must be {expected} (got {shown})")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", bool: "true/false", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def text(pattern: re.Pattern[str], expected: str) -> Check:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, str) or not pattern.match(value):
            raise _fail(name, expected, value)

    return check


def token(name: str, value: Any) -> None:
    if not isinstance(value, str) or len(value) > 255:
        raise _fail(name, "a pagination token from an earlier response", value)


def integer(low: int, high: int | None = None) -> Check:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(name, "a whole number", value)
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise _fail(name, span, value)

    return check


def number(low: float, high: float) -> Check:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(name, "a number", value)
        if not math.isfinite(value) or not low <= value <= high:
            raise _fail(name, f"a number between {low:g} and {high:g}", value)

    return check


def enum(values: tuple[str, ...]) -> Check:
    def check(name: str, value: Any) -> None:
        if value not in values or not isinstance(value, str):
            raise _fail(name, "one of " + ", ".join(values), value)

    return check


def items(each: Check, low: int, high: int | None = None) -> Check:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, list):
            raise _fail(name, "a list", value)
        if len(value) < low or (high is not None and len(value) > high):
            span = f"{low} to {high}" if high is not None else f"at least {low}"
            raise _fail(name, f"a list of {span} items", f"{len(value)} items")
        for i, item in enumerate(value):
            each(f"{name}[{i}]", item)

    return check


def tags(name: str, value: Any) -> None:
    if not isinstance(value, dict) or len(value) > 200:
        raise _fail(name, "an object of at most 200 tags", value)
    for key, tag in value.items():
        if not isinstance(tag, str) or not 1 <= len(key) <= 128 or len(tag) > 256:
            raise _fail(f"{name}.{key[:40]}", "a string of at most 256 characters", tag)


def image(name: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise _fail(name, "an object with Bytes or S3Object", value)
    unknown = set(value) - {"Bytes", "S3Object"}
    if unknown:
        raise InvalidParameterError(f"{name} has unknown members: {', '.join(sorted(unknown))}")
    if ("Bytes" in value) == ("S3Object" in value):
        raise InvalidParameterError(f"{name} needs exactly one of Bytes and S3Object")
    if "Bytes" in value and not isinstance(value["Bytes"], str):
        raise _fail(f"{name}.Bytes", "base64 text", value["Bytes"])
    if "S3Object" in value:
        s3 = value["S3Object"]
        if not isinstance(s3, dict) or set(s3) - {"Bucket", "Name", "Version"}:
            raise _fail(f"{name}.S3Object", "an object with Bucket, Name and Version", s3)
        text(BUCKET, "3-255 letters, digits and '.-_'")(f"{name}.S3Object.Bucket", s3.get("Bucket"))
        object_name = s3.get("Name")
        if not isinstance(object_name, str) or not 1 <= len(object_name) <= 1024:
            raise _fail(f"{name}.S3Object.Name", "1-1024 characters", object_name)


collection = text(COLLECTION_ID, "1-255 letters, digits and '_.-'")
user = text(USER_ID, "1-128 letters, digits and '_.-:'")
face_id = text(FACE_ID, "a face id (a lower-case UUID)")
client_token = text(CLIENT_TOKEN, "1-64 letters, digits, '-' and '_'")
quality = enum(QUALITY)
threshold = number(0, 100)

SPECS: dict[str, tuple[dict[str, Check], set[str]]] = {
    "CreateCollection": ({"CollectionId": collection, "Tags": tags}, {"CollectionId"}),
    "DeleteCollection": ({"CollectionId": collection}, {"CollectionId"}),
    "DescribeCollection": ({"CollectionId": collection}, {"CollectionId"}),
    "ListCollections": ({"NextToken": token, "MaxResults": integer(0, 4096)}, set()),
    "IndexFaces": (
        {
            "CollectionId": collection,
            "Image": image,
            "ExternalImageId": text(EXTERNAL_IMAGE_ID, "1-255 letters, digits and '_.-:'"),
            "DetectionAttributes": items(enum(ATTRIBUTES), 0),
            "MaxFaces": integer(1, 100),
            "QualityFilter": quality,
        },
        {"CollectionId", "Image"},
    ),
    "ListFaces": (
        {
            "CollectionId": collection,
            "NextToken": token,
            "MaxResults": integer(0, 4096),
            "UserId": user,
            "FaceIds": items(face_id, 1, 4096),
        },
        {"CollectionId"},
    ),
    "DeleteFaces": (
        {"CollectionId": collection, "FaceIds": items(face_id, 1, 4096)},
        {"CollectionId", "FaceIds"},
    ),
    "SearchFaces": (
        {
            "CollectionId": collection,
            "FaceId": face_id,
            "MaxFaces": integer(1, 4096),
            "FaceMatchThreshold": threshold,
        },
        {"CollectionId", "FaceId"},
    ),
    "SearchFacesByImage": (
        {
            "CollectionId": collection,
            "Image": image,
            "MaxFaces": integer(1, 4096),
            "FaceMatchThreshold": threshold,
            "QualityFilter": quality,
        },
        {"CollectionId", "Image"},
    ),
    "CompareFaces": (
        {
            "SourceImage": image,
            "TargetImage": image,
            "SimilarityThreshold": threshold,
            "QualityFilter": quality,
        },
        {"SourceImage", "TargetImage"},
    ),
    "DetectFaces": (
        {"Image": image, "Attributes": items(enum(ATTRIBUTES), 0)},
        {"Image"},
    ),
    "CreateUser": (
        {"CollectionId": collection, "UserId": user, "ClientRequestToken": client_token},
        {"CollectionId", "UserId"},
    ),
    "DeleteUser": (
        {"CollectionId": collection, "UserId": user, "ClientRequestToken": client_token},
        {"CollectionId", "UserId"},
    ),
    "ListUsers": (
        {"CollectionId": collection, "MaxResults": integer(1, 500), "NextToken": token},
        {"CollectionId"},
    ),
    "AssociateFaces": (
        {
            "CollectionId": collection,
            "UserId": user,
            "FaceIds": items(face_id, 1, 100),
            "UserMatchThreshold": threshold,
            "ClientRequestToken": client_token,
        },
        {"CollectionId", "UserId", "FaceIds"},
    ),
    "DisassociateFaces": (
        {
            "CollectionId": collection,
            "UserId": user,
            "FaceIds": items(face_id, 1, 100),
            "ClientRequestToken": client_token,
        },
        {"CollectionId", "UserId", "FaceIds"},
    ),
    "SearchUsers": (
        {
            "CollectionId": collection,
            "UserId": user,
            "FaceId": face_id,
            "UserMatchThreshold": threshold,
            "MaxUsers": integer(1, 500),
        },
        {"CollectionId"},
    ),
    "SearchUsersByImage": (
        {
            "CollectionId": collection,
            "Image": image,
            "UserMatchThreshold": threshold,
            "MaxUsers": integer(1, 500),
            "QualityFilter": quality,
        },
        {"CollectionId", "Image"},
    ),
}


def video(name: str, value: Any) -> None:
    if not isinstance(value, dict) or set(value) != {"S3Object"}:
        raise _fail(name, "an object with S3Object (Bucket, Name)", value)
    image(name, {"S3Object": value["S3Object"]})


SNS_ARN = re.compile(r"^arn:aws(-[a-z]+)*:sns:[a-z0-9-]+:\d{12}:[a-zA-Z0-9_.-]{1,256}$")
ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


def notification(name: str, value: Any) -> None:
    if not isinstance(value, dict) or set(value) - {"SNSTopicArn", "RoleArn"}:
        raise _fail(name, "an object with SNSTopicArn and RoleArn", value)
    text(SNS_ARN, "an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)")(
        f"{name}.SNSTopicArn", value.get("SNSTopicArn")
    )
    text(ROLE_ARN, "an IAM role ARN (arn:aws:iam::<account>:role/<name>)")(
        f"{name}.RoleArn", value.get("RoleArn")
    )


job_id = text(re.compile(r"^[a-zA-Z0-9-_]{1,64}$"), "a job id from a Start operation")
job_tag = text(re.compile(r"^[a-zA-Z0-9_.\-:]{1,256}$"), "1-256 letters, digits and '_.-:'")
SPECS.update(
    {
        "StartFaceDetection": (
            {
                "Video": video,
                "ClientRequestToken": client_token,
                "NotificationChannel": notification,
                "FaceAttributes": enum(("DEFAULT", "ALL")),
                "JobTag": job_tag,
            },
            {"Video"},
        ),
        "GetFaceDetection": (
            {"JobId": job_id, "MaxResults": integer(1, 1000), "NextToken": token},
            {"JobId"},
        ),
        "StartFaceSearch": (
            {
                "Video": video,
                "ClientRequestToken": client_token,
                "FaceMatchThreshold": threshold,
                "CollectionId": collection,
                "NotificationChannel": notification,
                "JobTag": job_tag,
            },
            {"Video", "CollectionId"},
        ),
        "GetFaceSearch": (
            {
                "JobId": job_id,
                "MaxResults": integer(1, 1000),
                "NextToken": token,
                "SortBy": enum(("INDEX", "TIMESTAMP")),
            },
            {"JobId"},
        ),
    }
)


def validate(action: str, body: dict[str, Any]) -> None:
    """Raise InvalidParameterError naming every problem with the request's members."""
    checks, required = SPECS[action]
    problems = [f"{name} is required" for name in sorted(required - set(body))]
    unknown = sorted(set(body) - set(checks))
    if unknown:
        shown = ", ".join(u[:40] for u in unknown[:5])
        problems.append(f"unknown members for {action}: {shown} (expected: {', '.join(checks)})")
    for name, value in body.items():
        check = checks.get(name)
        if check is None:
            continue
        try:
            check(name, value)
        except InvalidParameterError as error:
            problems.append(error.message)
    if problems:
        raise InvalidParameterError("; ".join(problems))
