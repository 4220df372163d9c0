"""Users: a person's several faces grouped under one id, searched as one (Rekognition's users)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.errors import AlreadyExistsError, InvalidParameterError, NotFoundError
from faceledger.service import review
from faceledger.service.common import (
    Request,
    check_limit,
    check_threshold,
    collection_engine,
    decode_token,
    encode_token,
    read_image,
    require_collection,
)
from faceledger.service.consent import mark_used, require_consent
from faceledger.service.context import Services
from faceledger.service.crops import crop_jpeg, keeps_crops, sealed_probe_crop
from faceledger.service.faces import DEFAULT_THRESHOLD, _largest_face
from faceledger.service.policy import enforce
from faceledger.service.results import (
    AssociateResult,
    DetectedFace,
    DisassociateResult,
    FailedAssociation,
    Governance,
    Page,
    UserInfo,
    UserMatch,
    UserSearchResult,
)
from faceledger.store.schema import FaceRow, UserRow

USER_ID = re.compile(r"^[a-zA-Z0-9_.\-:]{1,128}$")
DEFAULT_USER_MATCH_THRESHOLD = 75.0
MAX_FACES_PER_USER = 100


def create_user(services: Services, request: Request, collection_id: str, user_id: str) -> None:
    request.actor.require("users:write")
    if not USER_ID.match(user_id):
        raise InvalidParameterError("a user id is 1-128 characters of letters, digits and '_.-:'")
    with services.write_lock, services.db.write() as session:
        require_collection(session, collection_id)
        if _user(session, collection_id, user_id) is not None:
            raise AlreadyExistsError(f"user {user_id!r} already exists in {collection_id!r}")
        session.add(UserRow(collection_id=collection_id, user_id=user_id, status="CREATED"))
        services.ledger.append(
            session,
            request.event(
                "CreateUser", collection_id=collection_id, parameters={"user_id": user_id}
            ),
        )


def delete_user(services: Services, request: Request, collection_id: str, user_id: str) -> None:
    """Delete a user; its faces stay in the collection, no longer associated."""
    request.actor.require("users:write")
    with services.write_lock, services.db.write() as session:
        require_collection(session, collection_id)
        row = _require_user(session, collection_id, user_id)
        faces = _user_faces(session, collection_id, user_id)
        for face in faces:
            face.user_id = None
        session.delete(row)
        services.ledger.append(
            session,
            request.event(
                "DeleteUser",
                collection_id=collection_id,
                parameters={"user_id": user_id},
                results={"disassociated_face_ids": [f.face_id for f in faces]},
            ),
        )


def list_users(
    services: Services,
    request: Request,
    collection_id: str,
    *,
    max_results: int = 500,
    next_token: str | None = None,
) -> Page[UserInfo]:
    request.actor.require("users:read")
    check_limit(max_results, "max results", 500)
    after = decode_token(next_token)
    with services.db.read() as session:
        require_collection(session, collection_id)
        query = select(UserRow).where(UserRow.collection_id == collection_id)
        if after is not None:
            query = query.where(UserRow.user_id > after)
        rows = list(session.scalars(query.order_by(UserRow.user_id).limit(max_results + 1)))
        counts = dict(
            session.execute(
                select(FaceRow.user_id, func.count())
                .where(
                    FaceRow.collection_id == collection_id,
                    FaceRow.user_id.in_([r.user_id for r in rows]),
                )
                .group_by(FaceRow.user_id)
            ).all()
        )
    more = len(rows) > max_results
    users = [
        UserInfo(r.user_id, r.status, int(counts.get(r.user_id, 0))) for r in rows[:max_results]
    ]
    return Page(users, encode_token(users[-1].user_id) if more else None)


def associate_faces(
    services: Services,
    request: Request,
    collection_id: str,
    user_id: str,
    face_ids: Sequence[str],
    *,
    user_match_threshold: float = DEFAULT_USER_MATCH_THRESHOLD,
) -> AssociateResult:
    """Add faces to a user. Once the user has faces, a new face must reach
    ``user_match_threshold`` similarity with at least one of them."""
    request.actor.require("users:write")
    if not face_ids or len(face_ids) > MAX_FACES_PER_USER:
        raise InvalidParameterError(f"give between 1 and {MAX_FACES_PER_USER} face ids")
    check_threshold(user_match_threshold)
    # Enrolment, not identification: the policy's similarity floor is for searches.
    decision = enforce(services, request, "associate_faces", collection_id=collection_id)
    require_consent(services, request, decision, collection_id, user_id=user_id)
    associated: list[str] = []
    failed: list[FailedAssociation] = []
    engine = collection_engine(services, collection_id)
    with services.write_lock, services.db.write() as session:
        require_collection(session, collection_id)
        user = _require_user(session, collection_id, user_id)
        current = _user_faces(session, collection_id, user_id)
        known = [np.frombuffer(f.embedding, dtype=np.float32) for f in current]
        for face_id in dict.fromkeys(face_ids):
            row = session.get(FaceRow, face_id)
            if row is None or row.collection_id != collection_id:
                failed.append(FailedAssociation(face_id, ("FACE_NOT_FOUND",)))
                continue
            if row.user_id == user_id:
                associated.append(face_id)
                continue
            if row.user_id is not None:
                failed.append(
                    FailedAssociation(
                        face_id, ("ASSOCIATED_TO_A_DIFFERENT_USER",), user_id=row.user_id
                    )
                )
                continue
            vector = np.frombuffer(row.embedding, dtype=np.float32)
            if known:
                best = max(engine.compare(vector, k).similarity for k in known)
                if best < user_match_threshold:
                    failed.append(FailedAssociation(face_id, ("LOW_MATCH_CONFIDENCE",), best))
                    continue
            if len(known) >= MAX_FACES_PER_USER:
                failed.append(FailedAssociation(face_id, ("FACE_LIMIT_EXCEEDED",)))
                continue
            row.user_id = user_id
            known.append(vector)
            associated.append(face_id)
        user.status = "ACTIVE" if known else "CREATED"
        services.ledger.append(
            session,
            request.event(
                "AssociateFaces",
                collection_id=collection_id,
                parameters={
                    "user_id": user_id,
                    "user_match_threshold": user_match_threshold,
                    "policy": decision.policy,
                    "legal_basis": decision.legal_basis.value,
                },
                results={
                    "associated": associated,
                    "unsuccessful": [[f.face_id, list(f.reasons)] for f in failed],
                },
            ),
        )
        status = user.status
    return AssociateResult(associated, failed, status)


def disassociate_faces(
    services: Services, request: Request, collection_id: str, user_id: str, face_ids: Sequence[str]
) -> DisassociateResult:
    request.actor.require("users:write")
    if not face_ids or len(face_ids) > MAX_FACES_PER_USER:
        raise InvalidParameterError(f"give between 1 and {MAX_FACES_PER_USER} face ids")
    done: list[str] = []
    failed: list[FailedAssociation] = []
    with services.write_lock, services.db.write() as session:
        require_collection(session, collection_id)
        user = _require_user(session, collection_id, user_id)
        for face_id in dict.fromkeys(face_ids):
            row = session.get(FaceRow, face_id)
            if row is None or row.collection_id != collection_id:
                failed.append(FailedAssociation(face_id, ("FACE_NOT_FOUND",)))
            elif row.user_id != user_id:
                failed.append(
                    FailedAssociation(
                        face_id, ("ASSOCIATED_TO_A_DIFFERENT_USER",), user_id=row.user_id
                    )
                )
            else:
                row.user_id = None
                done.append(face_id)
        session.flush()
        remaining = session.scalar(
            select(func.count()).where(
                FaceRow.collection_id == collection_id, FaceRow.user_id == user_id
            )
        )
        user.status = "ACTIVE" if remaining else "CREATED"
        services.ledger.append(
            session,
            request.event(
                "DisassociateFaces",
                collection_id=collection_id,
                parameters={"user_id": user_id},
                results={
                    "disassociated": done,
                    "unsuccessful": [[f.face_id, list(f.reasons)] for f in failed],
                },
            ),
        )
        status = user.status
    return DisassociateResult(done, failed, status)


def search_users(
    services: Services,
    request: Request,
    collection_id: str,
    *,
    face_id: str | None = None,
    user_id: str | None = None,
    image_bytes: bytes | None = None,
    user_match_threshold: float = DEFAULT_THRESHOLD,
    max_users: int = 100,
) -> UserSearchResult:
    """Users like a stored face, a user's faces, or the largest face in an image. A user's
    similarity is its best face's; the searched user (or face's user) is left out."""
    request.actor.require("faces:search")
    if sum(x is not None for x in (face_id, user_id, image_bytes)) != 1:
        raise InvalidParameterError("search by exactly one of: face id, user id, image")
    check_limit(max_users, "max users", 500)
    check_threshold(user_match_threshold)
    operation = "SearchUsersByImage" if image_bytes is not None else "SearchUsers"
    requested = user_match_threshold
    decision = enforce(
        services,
        request,
        "search_users_by_image" if image_bytes is not None else "search_users",
        collection_id=collection_id,
        threshold=user_match_threshold,
        max_results=max_users,
    )
    user_match_threshold = decision.threshold or 0.0
    max_users = decision.max_results or max_users
    engine = collection_engine(services, collection_id)
    max_distance = engine.max_distance(user_match_threshold)
    searched_face = None
    image_sha = None
    image_size = None
    probe_crop = None
    with services.db.read() as session:
        require_collection(session, collection_id)
        if face_id is not None:
            row = session.get(FaceRow, face_id)
            if row is None or row.collection_id != collection_id:
                raise NotFoundError(f"face {face_id} is not in collection {collection_id!r}")
            probes = [np.frombuffer(row.embedding, dtype=np.float32)]
            exclude = row.user_id
        elif user_id is not None:
            _require_user(session, collection_id, user_id)
            probes = [
                np.frombuffer(f.embedding, dtype=np.float32)
                for f in _user_faces(session, collection_id, user_id)
            ]
            exclude = user_id
        else:
            exclude = None
            probes = []
    if image_bytes is not None:
        with services.gate.slot():
            image = read_image(services, image_bytes)
            face = _largest_face(services, image, "the image", engine)
            if decision.reviewers_required and keeps_crops(services, collection_id):
                probe_crop = crop_jpeg(image, face)  # for the review task's reviewers
        image_sha = image.sha256
        image_size = (image.width, image.height)
        searched_face = DetectedFace.of(face)
        assert face.embedding is not None
        probes = [face.embedding]
    best: dict[str, tuple[float, str]] = {}
    index = services.indexes.current(collection_id)
    for probe in probes:
        neighbors = index.search(probe, 4096, max_distance)
        with services.db.read() as session:
            owners = dict(
                session.execute(
                    select(FaceRow.face_id, FaceRow.user_id).where(
                        FaceRow.face_id.in_([n.face_id for n in neighbors]),
                        FaceRow.user_id.is_not(None),
                    )
                ).all()
            )
        for n in neighbors:
            owner = owners.get(n.face_id)
            if owner is None or owner == exclude:
                continue
            # A user is as close as its nearest face.
            best[owner] = min(best.get(owner, (float("inf"), "")), (n.distance, n.face_id))
    ranked = sorted(best.items(), key=lambda item: item[1])[:max_users]
    matches = []
    for owner, (distance, _) in ranked:
        match = engine.match_for_distance(distance)
        matches.append(
            UserMatch(owner, match.similarity, match.false_match_rate, match.fmr_upper_bound)
        )
    ticket = None
    with services.write_lock, services.db.write() as session:
        if decision.reviewers_required:
            candidates = [(best[m.user_id][1], m.user_id, None, m.similarity) for m in matches]
            ticket = review.open_task(
                session, request, decision, operation, collection_id, image_sha, candidates
            )
            if probe_crop is not None and candidates:
                session.add(sealed_probe_crop(services, ticket.task_id, probe_crop))
        mark_used(session, [best[m.user_id][1] for m in matches])
        services.ledger.append(
            session,
            request.event(
                operation,
                collection_id=collection_id,
                image_sha256=image_sha,
                parameters={
                    "face_id": face_id,
                    "user_id": user_id,
                    "user_match_threshold": user_match_threshold,
                    "threshold_requested": requested,
                    "max_users": max_users,
                    "policy": decision.policy,
                    "legal_basis": decision.legal_basis.value,
                },
                results={
                    "matches": [[m.user_id, m.similarity] for m in matches],
                    "review_task_id": ticket.task_id if ticket else None,
                },
            ),
        )
    if ticket is not None:
        matches = [replace(m, status="unconfirmed") for m in matches]
    return UserSearchResult(
        matches,
        user_match_threshold,
        searched_face_id=face_id,
        searched_user_id=user_id,
        searched_face=searched_face,
        image_size=image_size,
        face_model_version=engine.model_version,
        governance=Governance(
            decision.policy,
            requested,
            decision.threshold,
            decision.legal_basis.value,
            ticket,
        ),
    )


def _user(session: Session, collection_id: str, user_id: str) -> UserRow | None:
    return session.scalar(
        select(UserRow).where(UserRow.collection_id == collection_id, UserRow.user_id == user_id)
    )


def _user_faces(session: Session, collection_id: str, user_id: str) -> list[FaceRow]:
    return list(
        session.scalars(
            select(FaceRow).where(
                FaceRow.collection_id == collection_id, FaceRow.user_id == user_id
            )
        )
    )


def _require_user(session: Session, collection_id: str, user_id: str) -> UserRow:
    row = _user(session, collection_id, user_id)
    if row is None:
        raise NotFoundError(f"user {user_id!r} does not exist in {collection_id!r}")
    return row
