"""Face crops kept for human review: made when a face is indexed (or when a search opens a
review task, of its probe), sealed before they reach the database, shown only to the roles
that need them, and every showing is a use on the ledger (who, which faces, which task, why).

A reviewer cannot verify a lead from a face id and a score; they need to see both faces. So a
collection may keep one small crop per face (``keep_face_crops``), and nothing more: no whole
images, never in clear on disk. Crops go with their face (delete, retention, erasure) by the
database's foreign keys, and probe crops with their review task.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from faceledger.errors import InvalidParameterError, NotFoundError, RateLimited, RuleViolation
from faceledger.errors import PermissionDeniedError as Forbidden
from faceledger.imaging import encode_jpeg
from faceledger.service.auth import Role
from faceledger.service.common import (
    LoadedImage,
    Request,
    refusals_recorded,
    require_collection,
)
from faceledger.service.context import Services
from faceledger.service.policy import all_policies
from faceledger.store.schema import (
    ApiKeyRow,
    FaceCropRow,
    FaceRow,
    ProbeCropRow,
    ReviewCandidateRow,
    ReviewTaskRow,
)
from faceledger.vision import Face
from faceledger.vision.crops import review_crop

MAX_FACES_PER_VIEW = 200


def crop_jpeg(image: LoadedImage, face: Face) -> bytes:
    return encode_jpeg(review_crop(image.rgb, face), quality=85)


def sealed_face_crop(services: Services, face_id: str, jpeg: bytes) -> FaceCropRow:
    return FaceCropRow(face_id=face_id, sealed=services.crops.seal_bytes(jpeg, "face:" + face_id))


def sealed_probe_crop(services: Services, task_id: str, jpeg: bytes) -> ProbeCropRow:
    return ProbeCropRow(task_id=task_id, sealed=services.crops.seal_bytes(jpeg, "task:" + task_id))


def keeps_crops(services: Services, collection_id: str) -> bool:
    with services.db.read() as session:
        return require_collection(session, collection_id).keep_face_crops


def default_keep(services: Services, session: Session, collection_id: str) -> bool:
    """Whether a new collection keeps crops when its creator does not say: the server's
    setting, and with ``auto``, yes when a policy requiring review covers the collection and is
    in use (the server's default policy, or bound to an active key)."""
    setting = services.settings.keep_face_crops
    if setting != "auto":
        return setting == "on"
    in_use = {services.settings.default_policy} | set(
        session.scalars(select(ApiKeyRow.policy).where(ApiKeyRow.revoked_at.is_(None)))
    )
    return any(
        policy.reviewers_required > 0
        and any(fnmatch.fnmatchcase(collection_id, p) for p in policy.collections)
        for name, policy in all_policies(session).items()
        if name in in_use
    )


def set_keep_face_crops(
    services: Services, request: Request, collection_id: str, keep: bool
) -> int:
    """Switch a collection's crops on (for faces indexed from now) or off (every crop it
    holds is deleted now); returns how many crops were deleted. On the ledger."""
    request.actor.require("collections:manage")
    with services.write_lock, services.db.write() as session:
        row = require_collection(session, collection_id)
        deleted = 0
        if not keep:
            faces = select(FaceRow.face_id).where(FaceRow.collection_id == collection_id)
            deleted = session.execute(
                delete(FaceCropRow).where(FaceCropRow.face_id.in_(faces))
            ).rowcount
        row.keep_face_crops = keep
        services.ledger.append(
            session,
            request.event(
                "SetKeepFaceCrops",
                collection_id=collection_id,
                parameters={"keep_face_crops": keep},
                results={"deleted_crops": int(deleted or 0)},
            ),
        )
    return int(deleted or 0)


def crop_count(services: Services, collection_id: str) -> int:
    """How many of a collection's faces have a crop (what an auditor may see of them)."""
    with services.db.read() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(FaceCropRow)
                .join(FaceRow, FaceRow.face_id == FaceCropRow.face_id)
                .where(FaceRow.collection_id == collection_id)
            )
            or 0
        )


@dataclass(frozen=True)
class TaskCrops:
    probe: bytes | None  # None: the search kept no probe crop (a search by face id, or off)
    faces: dict[str, bytes]  # candidate face id -> JPEG, for candidates whose face kept one


def view_collection_crops(
    services: Services, request: Request, collection_id: str, face_ids: list[str]
) -> dict[str, bytes]:
    """The crops of faces in a collection, for an operator looking after it (enrolment,
    clean-up). Faces with no crop are left out. One ledger event for the lot."""
    request.actor.require("faces:read")
    if request.actor.role not in (Role.OPERATOR, Role.LOCAL):
        raise Forbidden("only operators see the faces of a collection")
    wanted = _checked_ids(face_ids)
    with services.db.read() as session:
        require_collection(session, collection_id)
        rows = session.execute(
            select(FaceCropRow.face_id, FaceCropRow.sealed)
            .join(FaceRow, FaceRow.face_id == FaceCropRow.face_id)
            .where(FaceRow.collection_id == collection_id, FaceCropRow.face_id.in_(wanted))
        ).all()
    crops = {face_id: services.crops.open_bytes(s, "face:" + face_id) for face_id, s in rows}
    record_crop_view(services, request, collection_id, sorted(crops), None)
    return crops


def view_task_crops(services: Services, request: Request, task_id: str) -> TaskCrops:
    """The probe's and the candidates' crops of an open review task, for a reviewer deciding
    it. The key that ran the search is refused: it cannot review its own results."""
    request.actor.require("review:decide")
    with (
        refusals_recorded(services, request, "ViewFaceCrops", "rule", RuleViolation),
        services.db.read() as session,
    ):
        task = session.get(ReviewTaskRow, task_id)
        if task is None:
            raise NotFoundError(f"no review task {task_id}")
        if task.requester_key_id == request.actor.key_id:
            raise Forbidden("the key that ran the search cannot review its results")
        if task.status != "open":
            raise RuleViolation("the task is closed: its faces are no longer shown")
        candidates = select(ReviewCandidateRow.face_id).where(ReviewCandidateRow.task_id == task_id)
        rows = session.execute(
            select(FaceCropRow.face_id, FaceCropRow.sealed).where(
                FaceCropRow.face_id.in_(candidates)
            )
        ).all()
        probe = session.get(ProbeCropRow, task_id)
        collection_id = task.collection_id
    faces = {face_id: services.crops.open_bytes(s, "face:" + face_id) for face_id, s in rows}
    probe_jpeg = services.crops.open_bytes(probe.sealed, "task:" + task_id) if probe else None
    record_crop_view(
        services, request, collection_id, sorted(faces), task_id, probe_jpeg is not None
    )
    return TaskCrops(probe_jpeg, faces)


def _checked_ids(face_ids: list[str]) -> list[str]:
    wanted = list(dict.fromkeys(face_ids))
    if not 1 <= len(wanted) <= MAX_FACES_PER_VIEW:
        raise InvalidParameterError(f"ask for between 1 and {MAX_FACES_PER_VIEW} faces' crops")
    return wanted


def record_crop_view(
    services: Services,
    request: Request,
    collection_id: str | None,
    face_ids: list[str],
    task_id: str | None,
    probe: bool = False,
    *,
    video_job_id: str | None = None,
) -> None:
    """Charge the key's allowance (a refusal is on the ledger too), then record the view:
    faces of a collection, of a review task, or people of a video job (``person:N``)."""
    seen = len(face_ids) + int(probe)
    with refusals_recorded(services, request, "ViewFaceCrops", "throttled", RateLimited):
        _take_allowance(services, request.actor.key_id, seen)
    with services.write_lock, services.db.write() as session:
        services.ledger.append(
            session,
            request.event(
                "ViewFaceCrops",
                collection_id=collection_id,
                parameters={"task_id": task_id}
                | ({"video_job_id": video_job_id} if video_job_id else {}),
                results={"face_ids": face_ids, "probe": probe, "crops": seen},
            ),
        )


def _take_allowance(services: Services, key_id: str, count: int) -> None:
    """A token bucket per key: ``crop_views_per_minute`` crops a minute, a minute's worth at
    once."""
    per_minute = services.settings.crop_views_per_minute
    wait = services.buckets("crop-views", per_minute / 60.0, per_minute).take(key_id, count)
    if wait:
        raise RateLimited(
            f"this key has seen its allowance of face crops for now "
            f"({per_minute} a minute); try again in {max(1, int(wait + 0.999))} s"
        )
