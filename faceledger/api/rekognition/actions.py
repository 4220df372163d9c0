"""One function per Rekognition action: request shape in, service call, response shape out.
No use-case logic lives here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faceledger.api.payload import decode_base64
from faceledger.errors import InvalidImageError, InvalidParameterError
from faceledger.service import collections, faces, users
from faceledger.service.buckets import InvalidS3Object, resolve_object
from faceledger.service.common import Request, collection_model
from faceledger.service.context import Services
from faceledger.service.results import Governance

from .shapes import face_detail, stored_face


@dataclass(frozen=True)
class Call:
    services: Services
    request: Request
    body: dict[str, Any]

    def get(self, name: str, default: Any = None) -> Any:
        return self.body.get(name, default)

    def need(self, name: str) -> Any:
        if name not in self.body:
            raise InvalidParameterError(f"{name} is required")
        return self.body[name]

    def image(self, name: str = "Image") -> bytes:
        return read_image_field(self.services, self.need(name))


def read_image_field(services: Services, image: Any) -> bytes:
    if not isinstance(image, dict):
        raise InvalidParameterError("Image must be an object with Bytes or S3Object")
    if "Bytes" in image:
        return decode_base64(image["Bytes"], "Image.Bytes")
    if "S3Object" in image:
        return _read_s3_object(services, image["S3Object"])
    raise InvalidParameterError("Image needs Bytes or S3Object")


def _read_s3_object(services: Services, s3: Any) -> bytes:
    if not isinstance(s3, dict):
        raise InvalidS3Object("S3Object needs Bucket and Name")
    path = resolve_object(services, s3.get("Bucket"), s3.get("Name"))
    if path.stat().st_size > services.settings.max_image_bytes:
        raise InvalidImageError("TOO_LARGE", "the S3 object is larger than the image limit")
    return path.read_bytes()


def collection_arn(collection_id: str) -> str:
    return f"arn:faceledger:rekognition:local:collection/{collection_id}"


def create_collection(c: Call) -> dict[str, Any]:
    info = collections.create_collection(c.services, c.request, c.need("CollectionId"))
    return {
        "StatusCode": 200,
        "CollectionArn": collection_arn(c.need("CollectionId")),
        "FaceModelVersion": info.face_model_version,
    }


def delete_collection(c: Call) -> dict[str, Any]:
    collections.delete_collection(c.services, c.request, c.need("CollectionId"))
    return {"StatusCode": 200}


def list_collections(c: Call) -> dict[str, Any]:
    page = collections.list_collections(
        c.services,
        c.request,
        max_results=_max(c.get("MaxResults"), 1000),
        next_token=c.get("NextToken"),
    )
    out: dict[str, Any] = {
        "CollectionIds": [item.collection_id for item in page.items],
        "FaceModelVersions": [item.face_model_version for item in page.items],
    }
    if page.next_token:
        out["NextToken"] = page.next_token
    return out


def describe_collection(c: Call) -> dict[str, Any]:
    info = collections.describe_collection(c.services, c.request, c.need("CollectionId"))
    return {
        "FaceCount": info.face_count,
        "UserCount": info.user_count,
        "FaceModelVersion": info.face_model_version,
        "CollectionARN": collection_arn(info.collection_id),
        "CreationTimestamp": info.created_at.timestamp(),
    }


def index_faces(c: Call) -> dict[str, Any]:
    result = faces.index_faces(
        c.services,
        c.request,
        c.need("CollectionId"),
        c.image(),
        external_image_id=c.get("ExternalImageId"),
        max_faces=c.get("MaxFaces"),
        quality_filter=c.get("QualityFilter", "AUTO"),
    )
    w, h = result.image_width, result.image_height
    return {
        "FaceRecords": [
            {
                "Face": stored_face(f.face, result.face_model_version),
                "FaceDetail": face_detail(f.detail, w, h),
            }
            for f in result.indexed
        ],
        "UnindexedFaces": [
            {"Reasons": list(u.reasons), "FaceDetail": face_detail(u.face, w, h)}
            for u in result.unindexed
        ],
        "FaceModelVersion": result.face_model_version,
    }


def list_faces(c: Call) -> dict[str, Any]:
    page = faces.list_faces(
        c.services,
        c.request,
        c.need("CollectionId"),
        max_results=_max(c.get("MaxResults"), 1000),
        next_token=c.get("NextToken"),
        user_id=c.get("UserId"),
        face_ids=c.get("FaceIds"),
    )
    version = collection_model(c.services, c.need("CollectionId"))
    out: dict[str, Any] = {
        "Faces": [stored_face(f, version) for f in page.items],
        "FaceModelVersion": version,
    }
    if page.next_token:
        out["NextToken"] = page.next_token
    return out


def delete_faces(c: Call) -> dict[str, Any]:
    deleted, refused = faces.delete_faces(
        c.services, c.request, c.need("CollectionId"), c.need("FaceIds")
    )
    return {
        "DeletedFaces": deleted,
        "UnsuccessfulFaceDeletions": [{"FaceId": f, "Reasons": [r]} for f, r in refused],
    }


def governance(info: Governance | None) -> dict[str, Any]:
    """faceledger's addition to the response (clients that do not know it ignore it): the policy
    the results were produced under and, when they await review, the review task."""
    if info is None:
        return {}
    out: dict[str, Any] = {
        "Policy": info.policy,
        "ThresholdApplied": info.threshold_applied,
        "LegalBasis": info.legal_basis,
        "ResultsAre": info.results_are,
    }
    if info.review is not None:
        out["Review"] = {
            "TaskId": info.review.task_id,
            "Status": info.review.status,
            "ReviewersRequired": info.review.reviewers_required,
        }
    return {"FaceledgerGovernance": out}


def search_faces(c: Call) -> dict[str, Any]:
    result = faces.search_faces(
        c.services,
        c.request,
        c.need("CollectionId"),
        c.need("FaceId"),
        threshold=c.get("FaceMatchThreshold", 80.0),
        max_faces=c.get("MaxFaces", 4096),
    )
    return {
        "SearchedFaceId": c.need("FaceId"),
        "FaceMatches": _matches(result.matches, result.face_model_version),
        "FaceModelVersion": result.face_model_version,
        **governance(result.governance),
    }


def search_faces_by_image(c: Call) -> dict[str, Any]:
    result = faces.search_faces_by_image(
        c.services,
        c.request,
        c.need("CollectionId"),
        c.image(),
        threshold=c.get("FaceMatchThreshold", 80.0),
        max_faces=c.get("MaxFaces", 4096),
    )
    searched = result.searched_face
    assert searched is not None and result.image_width and result.image_height
    detail = face_detail(searched, result.image_width, result.image_height)
    return {
        "SearchedFaceBoundingBox": detail["BoundingBox"],
        "SearchedFaceConfidence": searched.confidence,
        "FaceMatches": _matches(result.matches, result.face_model_version),
        "FaceModelVersion": result.face_model_version,
        **governance(result.governance),
    }


def compare_faces(c: Call) -> dict[str, Any]:
    result = faces.compare_faces(
        c.services,
        c.request,
        c.image("SourceImage"),
        c.image("TargetImage"),
        threshold=c.get("SimilarityThreshold", 80.0),
    )
    sw, sh = result.source_size
    tw, th = result.target_size
    source = face_detail(result.source_face, sw, sh)

    def compared(face: Any) -> dict[str, Any]:
        detail = face_detail(face.face, tw, th)
        return {k: detail[k] for k in ("BoundingBox", "Confidence", "Landmarks", "Pose", "Quality")}

    return {
        "SourceImageFace": {
            "BoundingBox": source["BoundingBox"],
            "Confidence": source["Confidence"],
        },
        "FaceMatches": [{"Similarity": m.similarity, "Face": compared(m)} for m in result.matches],
        "UnmatchedFaces": [compared(m) for m in result.unmatched],
    }


def detect_faces(c: Call) -> dict[str, Any]:
    # Any attribute list gets the same answer: faceledger does not infer age, gender,
    # emotion or other traits from faces, by design.
    result = faces.detect_faces(c.services, c.request, c.image())
    return {
        "FaceDetails": [
            face_detail(f, result.image_width, result.image_height) for f in result.faces
        ]
    }


def create_user(c: Call) -> dict[str, Any]:
    users.create_user(c.services, c.request, c.need("CollectionId"), c.need("UserId"))
    return {}


def delete_user(c: Call) -> dict[str, Any]:
    users.delete_user(c.services, c.request, c.need("CollectionId"), c.need("UserId"))
    return {}


def list_users(c: Call) -> dict[str, Any]:
    page = users.list_users(
        c.services,
        c.request,
        c.need("CollectionId"),
        max_results=_max(c.get("MaxResults"), 500),
        next_token=c.get("NextToken"),
    )
    out: dict[str, Any] = {
        "Users": [{"UserId": u.user_id, "UserStatus": u.status} for u in page.items]
    }
    if page.next_token:
        out["NextToken"] = page.next_token
    return out


def associate_faces(c: Call) -> dict[str, Any]:
    result = users.associate_faces(
        c.services,
        c.request,
        c.need("CollectionId"),
        c.need("UserId"),
        c.need("FaceIds"),
        user_match_threshold=c.get("UserMatchThreshold", 75.0),
    )
    return {
        "AssociatedFaces": [{"FaceId": f} for f in result.associated],
        "UnsuccessfulFaceAssociations": [_failure(f) for f in result.unsuccessful],
        "UserStatus": result.user_status,
    }


def disassociate_faces(c: Call) -> dict[str, Any]:
    collection, user = c.need("CollectionId"), c.need("UserId")
    result = users.disassociate_faces(c.services, c.request, collection, user, c.need("FaceIds"))
    return {
        "DisassociatedFaces": [{"FaceId": f} for f in result.disassociated],
        "UnsuccessfulFaceDisassociations": [_failure(f) for f in result.unsuccessful],
        "UserStatus": result.user_status,
    }


def search_users(c: Call) -> dict[str, Any]:
    result = users.search_users(
        c.services,
        c.request,
        c.need("CollectionId"),
        face_id=c.get("FaceId"),
        user_id=c.get("UserId"),
        user_match_threshold=c.get("UserMatchThreshold", 80.0),
        max_users=c.get("MaxUsers", 100),
    )
    out: dict[str, Any] = {
        "UserMatches": _user_matches(result.matches),
        "FaceModelVersion": result.face_model_version,
        **governance(result.governance),
    }
    if result.searched_face_id:
        out["SearchedFace"] = {"FaceId": result.searched_face_id}
    if result.searched_user_id:
        out["SearchedUser"] = {"UserId": result.searched_user_id}
    return out


def search_users_by_image(c: Call) -> dict[str, Any]:
    image = c.image()
    result = users.search_users(
        c.services,
        c.request,
        c.need("CollectionId"),
        image_bytes=image,
        user_match_threshold=c.get("UserMatchThreshold", 80.0),
        max_users=c.get("MaxUsers", 100),
    )
    out: dict[str, Any] = {
        "UserMatches": _user_matches(result.matches),
        "FaceModelVersion": result.face_model_version,
        **governance(result.governance),
        "UnsearchedFaces": [],
    }
    if result.searched_face is not None and result.image_size is not None:
        out["SearchedFace"] = {"FaceDetail": face_detail(result.searched_face, *result.image_size)}
    return out


def _matches(matches: list[Any], face_model_version: str) -> list[dict[str, Any]]:
    return [
        {"Similarity": m.similarity, "Face": stored_face(m.face, face_model_version)}
        for m in matches
    ]


def _user_matches(matches: list[Any]) -> list[dict[str, Any]]:
    return [
        {"Similarity": m.similarity, "User": {"UserId": m.user_id, "UserStatus": "ACTIVE"}}
        for m in matches
    ]


def _failure(f: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"FaceId": f.face_id, "Reasons": list(f.reasons)}
    if f.user_id is not None:
        out["UserId"] = f.user_id
    if f.similarity is not None:
        out["Confidence"] = f.similarity
    return out


def _max(value: Any, default: int) -> int:
    # Rekognition allows 0 and means "the default" by it.
    return default if value in (None, 0) else int(value)


ACTIONS: dict[str, Callable[[Call], dict[str, Any]]] = {  # video actions join in __init__
    "CreateCollection": create_collection,
    "DeleteCollection": delete_collection,
    "ListCollections": list_collections,
    "DescribeCollection": describe_collection,
    "IndexFaces": index_faces,
    "ListFaces": list_faces,
    "DeleteFaces": delete_faces,
    "SearchFaces": search_faces,
    "SearchFacesByImage": search_faces_by_image,
    "CompareFaces": compare_faces,
    "DetectFaces": detect_faces,
    "CreateUser": create_user,
    "DeleteUser": delete_user,
    "ListUsers": list_users,
    "AssociateFaces": associate_faces,
    "DisassociateFaces": disassociate_faces,
    "SearchUsers": search_users,
    "SearchUsersByImage": search_users_by_image,
}
