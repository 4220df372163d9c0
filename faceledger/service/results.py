"""What the use cases return: named, frozen results that every interface serialises its way."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from faceledger.vision import Box, Face, Quality

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None = None


@dataclass(frozen=True)
class CollectionInfo:
    collection_id: str
    face_count: int
    user_count: int
    face_model_version: str
    created_at: dt.datetime
    keep_face_crops: bool = False
    retention_days: int | None = None  # None: the enrolling policy's rule


@dataclass(frozen=True)
class CollectionSummary:
    collection_id: str
    face_model_version: str


@dataclass(frozen=True)
class FaceRecord:
    """A stored face. ``box`` in pixels of the indexed image, whose size is given."""

    face_id: str
    collection_id: str
    external_image_id: str | None
    image_id: str
    box: Box
    image_width: int
    image_height: int
    confidence: float
    user_id: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class DetectedFace:
    """A face seen in a request image (not stored)."""

    box: Box
    confidence: float
    quality: Quality
    landmarks: tuple[tuple[float, float], ...]

    @classmethod
    def of(cls, face: Face) -> DetectedFace:
        return cls(
            face.box, face.confidence, face.quality, tuple((p.x, p.y) for p in face.landmarks)
        )


@dataclass(frozen=True)
class UnindexedFace:
    face: DetectedFace
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class IndexedFace:
    face: FaceRecord
    detail: DetectedFace


@dataclass(frozen=True)
class IndexResult:
    indexed: list[IndexedFace]
    unindexed: list[UnindexedFace]
    image_width: int
    image_height: int
    image_sha256: str
    face_model_version: str


@dataclass(frozen=True)
class FaceMatch:
    """A candidate, for a person to review: never an identification."""

    face: FaceRecord
    similarity: float
    false_match_rate: float
    fmr_upper_bound: bool
    status: str = "candidate"  # "unconfirmed" while a review is pending


@dataclass(frozen=True)
class ReviewTicket:
    """Returned with results that need human review before anyone acts on them."""

    task_id: str
    reviewers_required: int
    status: str = "unconfirmed"


@dataclass(frozen=True)
class Governance:
    """Under which policy results were produced."""

    policy: str
    threshold_requested: float | None = None
    threshold_applied: float | None = None
    legal_basis: str | None = None
    review: ReviewTicket | None = None
    results_are: str = "candidates for human review, never identifications"


@dataclass(frozen=True)
class SearchResult:
    matches: list[FaceMatch]
    threshold: float
    searched_face_id: str | None = None
    searched_face: DetectedFace | None = None
    image_width: int | None = None
    image_height: int | None = None
    face_model_version: str = ""
    governance: Governance | None = None
    faces_in_image: list[DetectedFace] = field(default_factory=list)  # by image: all found


@dataclass(frozen=True)
class ComparedFace:
    """A face of the target image, compared with the source's: a candidate, never a verdict."""

    face: DetectedFace
    similarity: float
    false_match_rate: float
    fmr_upper_bound: bool
    status: str = "candidate"


@dataclass(frozen=True)
class CompareResult:
    source_face: DetectedFace
    matches: list[ComparedFace]
    unmatched: list[ComparedFace]
    threshold: float
    source_size: tuple[int, int]
    target_size: tuple[int, int]


@dataclass(frozen=True)
class DetectResult:
    faces: list[DetectedFace]
    image_width: int
    image_height: int


@dataclass(frozen=True)
class UserInfo:
    user_id: str
    status: str
    face_count: int


@dataclass(frozen=True)
class FailedAssociation:
    face_id: str
    reasons: tuple[str, ...]
    similarity: float | None = None
    user_id: str | None = None


@dataclass(frozen=True)
class AssociateResult:
    associated: list[str]
    unsuccessful: list[FailedAssociation]
    user_status: str


@dataclass(frozen=True)
class DisassociateResult:
    disassociated: list[str]
    unsuccessful: list[FailedAssociation]
    user_status: str


@dataclass(frozen=True)
class UserMatch:
    """A candidate user, for a person to review: never an identification."""

    user_id: str
    similarity: float
    false_match_rate: float
    fmr_upper_bound: bool
    status: str = "candidate"  # "unconfirmed" while a review is pending


@dataclass(frozen=True)
class UserSearchResult:
    matches: list[UserMatch]
    threshold: float
    searched_face_id: str | None = None
    searched_user_id: str | None = None
    searched_face: DetectedFace | None = None
    image_size: tuple[int, int] | None = None
    face_model_version: str = ""
    notes: list[str] = field(default_factory=list)
    governance: Governance | None = None
