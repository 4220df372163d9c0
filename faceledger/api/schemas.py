"""Request and response shapes of the native API. Inputs and outputs are separate models;
outputs are filled from the service's result dataclasses."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from faceledger.config import FaceModelName
from faceledger.governance.policies import LegalBasis
from faceledger.service.auth import Actor
from faceledger.service.common import Request
from faceledger.vision import QualityLevel
from faceledger.vision.types import LANDMARK_NAMES


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- inputs ------------------------------------------------------------------------------------


class WithPurpose(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str | None = Field(None, max_length=1000, description="Why this use (on the ledger).")
    case: str | None = Field(
        None, max_length=255, description="Case or reference number (some policies require it)."
    )
    legal_basis: LegalBasis | None = Field(
        None, description="The legal basis of this use (some policies require it)."
    )

    def request(self, actor: Actor) -> Request:
        basis = self.legal_basis.value if self.legal_basis else None
        return Request(actor, self.purpose, self.case, basis)


class CollectionIn(WithPurpose):
    collection_id: str
    face_model: FaceModelName | None = Field(
        None,
        description="The face model the collection is bound to for life (default: the "
        "server's, FACELEDGER_FACE_MODEL). Searches never compare two models' descriptors.",
    )
    keep_face_crops: bool | None = Field(
        None,
        description="Keep a small encrypted crop of each indexed face for human review "
        "(default: the server's FACELEDGER_KEEP_FACE_CROPS; auto keeps them where a policy "
        "that requires review covers the collection).",
    )


class KeepCropsIn(WithPurpose):
    keep_face_crops: bool


class CropsIn(WithPurpose):
    face_ids: list[str] = Field(min_length=1, max_length=200)


class IndexIn(WithPurpose):
    external_image_id: str | None = None
    max_faces: int | None = Field(None, ge=1, le=100)
    quality_filter: QualityLevel = QualityLevel.AUTO


class SearchIn(WithPurpose):
    threshold: float = Field(80.0, ge=0, le=100, description="Similarity 0-100.")
    max_faces: int = Field(100, ge=1, le=4096)


class CompareIn(WithPurpose):
    threshold: float = Field(80.0, ge=0, le=100)


class FaceIdsIn(WithPurpose):
    face_ids: list[str] = Field(min_length=1, max_length=4096)


class UserIn(WithPurpose):
    user_id: str


class AssociateIn(FaceIdsIn):
    user_match_threshold: float = Field(75.0, ge=0, le=100)


class UserSearchIn(WithPurpose):
    face_id: str | None = None
    user_id: str | None = None
    user_match_threshold: float = Field(80.0, ge=0, le=100)
    max_users: int = Field(100, ge=1, le=500)


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "operator", "reviewer", "auditor"]
    name: str = Field(min_length=1, max_length=255)
    aws: bool = Field(False, description="An access key id and secret for Signature V4.")
    purpose: str | None = Field(
        None, max_length=1000, description="Default purpose recorded on every use."
    )
    policy: str | None = Field(
        None, description="The use policy the key acts under (default: the server's)."
    )
    case: str | None = Field(
        None, max_length=255, description="AWS keys: the case number their requests carry."
    )


class KeyPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: str


class PolicyIn(BaseModel):
    """A use policy; see GET /v1/policies for the shipped ones as examples."""

    model_config = ConfigDict(extra="allow")
    name: str


# -- outputs -----------------------------------------------------------------------------------


class BoxOut(Out):
    """Pixels of the image after EXIF orientation: left, top, width, height."""

    left: float
    top: float
    width: float
    height: float


class PoseOut(Out):
    yaw: float
    pitch: float
    roll: float


class QualityOut(Out):
    brightness: float
    sharpness: float
    face_size: float
    pose: PoseOut
    confidence: float


class LandmarkOut(BaseModel):
    type: str = Field(description=", ".join(LANDMARK_NAMES) + " (left and right as seen)")
    x: float
    y: float


class DetectedFaceOut(Out):
    box: BoxOut
    confidence: float
    quality: QualityOut
    landmarks: list[LandmarkOut] = Field(
        description="dlib's five points in their order, named; pixels, like the box."
    )

    @field_validator("landmarks", mode="before")
    @classmethod
    def _named(cls, points: Any) -> Any:
        if isinstance(points, (list, tuple)) and all(isinstance(p, tuple) for p in points):
            return [
                {"type": name, "x": x, "y": y}
                for name, (x, y) in zip(LANDMARK_NAMES, points, strict=True)
            ]
        return points


class FaceRecordOut(Out):
    face_id: str
    collection_id: str
    external_image_id: str | None
    image_id: str = Field(description="SHA-256 of the image the face was indexed from.")
    box: BoxOut
    image_width: int
    image_height: int
    confidence: float
    user_id: str | None
    created_at: dt.datetime


class IndexedFaceOut(Out):
    face: FaceRecordOut
    detail: DetectedFaceOut


class UnindexedFaceOut(Out):
    face: DetectedFaceOut
    reasons: list[str]


class IndexOut(Out):
    indexed: list[IndexedFaceOut]
    unindexed: list[UnindexedFaceOut]
    image_width: int
    image_height: int
    image_sha256: str
    face_model_version: str


class FaceMatchOut(Out):
    """A candidate for a person to review, never an identification."""

    face: FaceRecordOut
    similarity: float
    false_match_rate: float
    fmr_upper_bound: bool
    status: str = Field(description="candidate, or unconfirmed while a review is pending")


class ReviewTicketOut(Out):
    task_id: str
    reviewers_required: int
    status: str


class GovernanceOut(Out):
    policy: str
    threshold_requested: float | None
    threshold_applied: float | None
    legal_basis: str | None
    review: ReviewTicketOut | None
    results_are: str


class SearchOut(Out):
    matches: list[FaceMatchOut]
    threshold: float
    searched_face_id: str | None
    searched_face: DetectedFaceOut | None
    face_model_version: str
    governance: GovernanceOut | None


class ComparedFaceOut(Out):
    face: DetectedFaceOut
    similarity: float
    false_match_rate: float
    fmr_upper_bound: bool
    status: str = Field(description="candidate: for a person to judge, never a verdict")


class CompareOut(Out):
    source_face: DetectedFaceOut
    matches: list[ComparedFaceOut]
    unmatched: list[ComparedFaceOut]
    threshold: float


class DetectOut(Out):
    faces: list[DetectedFaceOut]
    image_width: int
    image_height: int


class CollectionOut(Out):
    collection_id: str
    face_count: int
    user_count: int
    face_model_version: str
    created_at: dt.datetime
    keep_face_crops: bool
    retention_days: int | None


class CollectionListOut(BaseModel):
    collection_ids: list[str]
    face_model_versions: list[str]  # one per collection id, as Rekognition lists them
    next_token: str | None


class FaceListOut(BaseModel):
    faces: list[FaceRecordOut]
    next_token: str | None


class FailedFaceOut(Out):
    face_id: str
    reasons: list[str]
    similarity: float | None = None
    user_id: str | None = None


class DeleteFacesOut(BaseModel):
    deleted_face_ids: list[str]
    unsuccessful: list[FailedFaceOut]


class UserOut(Out):
    user_id: str
    status: str
    face_count: int


class UserListOut(BaseModel):
    users: list[UserOut]
    next_token: str | None


class AssociateOut(BaseModel):
    associated_face_ids: list[str]
    unsuccessful: list[FailedFaceOut]
    user_status: str


class UserMatchOut(Out):
    """A candidate user for a person to review, never an identification."""

    user_id: str
    similarity: float
    false_match_rate: float
    fmr_upper_bound: bool
    status: str = Field(description="candidate, or unconfirmed while a review is pending")


class UserSearchOut(Out):
    matches: list[UserMatchOut]
    threshold: float
    searched_face_id: str | None
    searched_user_id: str | None
    searched_face: DetectedFaceOut | None
    governance: GovernanceOut | None


class KeyOut(BaseModel):
    key_id: str
    name: str
    role: str
    policy: str | None = None
    created_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None


class KeyListOut(BaseModel):
    keys: list[KeyOut]
    next_token: str | None


class IssuedKeyOut(BaseModel):
    key_id: str = Field(description="Bearer keys: the key's id. AWS keys: the access key id.")
    name: str
    role: str
    policy: str = Field(description="The use policy every request with this key is held to.")
    aws: bool
    purpose: str | None = Field(description="Recorded on every use that states none.")
    case: str | None
    token: str = Field(
        description="Shown once. Bearer keys: send 'Authorization: Bearer "
        "<token>'. AWS keys: the secret access key; key_id is the access key id."
    )
    shown_once: str = "the token is shown only now and cannot be retrieved later"


class VerificationOut(Out):
    ok: bool
    events: int
    signatures: int
    last_signed_seq: int
    unsigned_tail: int
    first_bad_seq: int | None
    reason: str | None
    heads_checked: int = Field(
        description="Heads held outside the database (the anchor file) found in the chain."
    )


class SignedHeadOut(Out):
    seq: int
    hash: str
    time: str
    signature: str = Field(description="Ed25519 over 'faceledger-ledger-head:<seq>:<hash>'.")
    public_key_id: str
