"""List, delete, search, compare and detect faces (Rekognition's semantics); indexing is in
:mod:`faceledger.service.indexing` (re-exported here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from sqlalchemy import select

from faceledger.errors import InvalidParameterError, NoFaceDetected, NotFoundError
from faceledger.governance.policies import Decision
from faceledger.service import review
from faceledger.service.common import (
    LoadedImage,
    Request,
    analyze,
    check_limit,
    check_threshold,
    collection_engine,
    decode_token,
    encode_token,
    face_record,
    read_image,
    require_collection,
)
from faceledger.service.consent import mark_used
from faceledger.service.context import Services
from faceledger.service.crops import crop_jpeg, sealed_probe_crop
from faceledger.service.indexing import index_faces as index_faces  # re-exported
from faceledger.service.policy import enforce
from faceledger.service.results import (
    ComparedFace,
    CompareResult,
    DetectedFace,
    DetectResult,
    FaceMatch,
    FaceRecord,
    Governance,
    Page,
    SearchResult,
)
from faceledger.store.schema import FaceRow
from faceledger.vision import Box, Face, FaceEngine

DEFAULT_THRESHOLD = 80.0


def list_faces(
    services: Services,
    request: Request,
    collection_id: str,
    *,
    max_results: int = 1000,
    next_token: str | None = None,
    user_id: str | None = None,
    face_ids: Sequence[str] | None = None,
) -> Page[FaceRecord]:
    request.actor.require("faces:read")
    check_limit(max_results, "max results")
    after = decode_token(next_token)
    with services.db.read() as session:
        require_collection(session, collection_id)
        query = select(FaceRow).where(FaceRow.collection_id == collection_id)
        if user_id is not None:
            query = query.where(FaceRow.user_id == user_id)
        if face_ids:
            query = query.where(FaceRow.face_id.in_(list(face_ids)))
        if after is not None:
            query = query.where(FaceRow.face_id > after)
        rows = list(session.scalars(query.order_by(FaceRow.face_id).limit(max_results + 1)))
    more = len(rows) > max_results
    records = [face_record(r) for r in rows[:max_results]]
    return Page(records, encode_token(records[-1].face_id) if more else None)


def delete_faces(
    services: Services, request: Request, collection_id: str, face_ids: Sequence[str]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Delete faces; returns (deleted ids, [(id, reason)] for those not deleted). A face that
    belongs to a user is kept until it is disassociated, as Rekognition does."""
    request.actor.require("faces:write")
    if not face_ids or len(face_ids) > 4096:
        raise InvalidParameterError("give between 1 and 4096 face ids")
    deleted: list[str] = []
    refused: list[tuple[str, str]] = []
    services.forget_saved_index()
    with services.write_lock, services.db.write() as session:
        require_collection(session, collection_id)
        rows = {
            r.face_id: r
            for r in session.scalars(
                select(FaceRow).where(
                    FaceRow.collection_id == collection_id, FaceRow.face_id.in_(list(face_ids))
                )
            )
        }
        for face_id in dict.fromkeys(face_ids):
            row = rows.get(face_id)
            if row is None:
                refused.append((face_id, "FACE_NOT_FOUND"))
            elif row.user_id is not None:
                refused.append((face_id, "ASSOCIATED_TO_AN_EXISTING_USER"))
            else:
                session.delete(row)
                deleted.append(face_id)
        services.ledger.append(
            session,
            request.event(
                "DeleteFaces",
                collection_id=collection_id,
                results={"deleted_face_ids": deleted, "refused": refused},
            ),
        )
    return deleted, refused


def search_faces(
    services: Services,
    request: Request,
    collection_id: str,
    face_id: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    max_faces: int = 100,
) -> SearchResult:
    """Faces of the collection like a stored face (the face itself left out)."""
    requested = threshold
    decision = _search_allowed(
        services, request, "search_faces", collection_id, threshold, max_faces
    )
    threshold, max_faces = decision.threshold or 0.0, decision.max_results or max_faces
    with services.db.read() as session:
        require_collection(session, collection_id)
        row = session.get(FaceRow, face_id)
        if row is None or row.collection_id != collection_id:
            raise NotFoundError(f"face {face_id} is not in collection {collection_id!r}")
        probe = np.frombuffer(row.embedding, dtype=np.float32)
    engine = collection_engine(services, collection_id)
    matches = _search(services, engine, collection_id, probe, threshold, max_faces + 1)
    matches = [m for m in matches if m.face.face_id != face_id][:max_faces]
    matches, governance = _record_search(
        services,
        request,
        "SearchFaces",
        collection_id,
        (requested, decision),
        max_faces,
        matches,
        searched_face_id=face_id,
    )
    return SearchResult(
        matches,
        threshold,
        searched_face_id=face_id,
        face_model_version=engine.model_version,
        governance=governance,
    )


def search_faces_by_image(
    services: Services,
    request: Request,
    collection_id: str,
    image_bytes: bytes,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    max_faces: int = 100,
    face_box: Box | None = None,
) -> SearchResult:
    """Faces of the collection like the largest face in the image, or like the face at
    ``face_box`` (pixels) when given: a person picking one face of a group photo. The result
    lists every face found, so a caller can offer the others."""
    requested = threshold
    decision = _search_allowed(
        services, request, "search_faces_by_image", collection_id, threshold, max_faces
    )
    threshold, max_faces = decision.threshold or 0.0, decision.max_results or max_faces
    with services.db.read() as session:
        collection = require_collection(session, collection_id)
    engine = services.engine_for(collection.face_model_version)
    with services.gate.slot():
        image = read_image(services, image_bytes)
        found = analyze(services, image, engine)
        probe = _chosen_face(found, face_box)
        # Kept only with the review task the search opens, for its reviewers to see.
        probe_crop = (
            crop_jpeg(image, probe)
            if collection.keep_face_crops and decision.reviewers_required
            else None
        )
    assert probe.embedding is not None
    matches = _search(services, engine, collection_id, probe.embedding, threshold, max_faces)
    matches, governance = _record_search(
        services,
        request,
        "SearchFacesByImage",
        collection_id,
        (requested, decision),
        max_faces,
        matches,
        image_sha256=image.sha256,
        probe_crop=probe_crop,
    )
    return SearchResult(
        matches,
        threshold,
        searched_face=DetectedFace.of(probe),
        image_width=image.width,
        image_height=image.height,
        face_model_version=engine.model_version,
        governance=governance,
        faces_in_image=[DetectedFace.of(f) for f in found],
    )


def compare_faces(
    services: Services,
    request: Request,
    source: bytes,
    target: bytes,
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> CompareResult:
    """The largest face of ``source`` against every face of ``target``."""
    request.actor.require("faces:compare")
    check_threshold(threshold)
    decision = enforce(services, request, "compare_faces", threshold=threshold)
    threshold = decision.threshold if decision.threshold is not None else threshold
    with services.gate.slot():
        source_image, target_image = read_image(services, source), read_image(services, target)
        probe = _largest_face(services, source_image, "the source image")
        target_faces = analyze(services, target_image)
    compared = []
    for face in target_faces:
        match = services.engine.compare(probe, face)
        compared.append(
            ComparedFace(
                DetectedFace.of(face),
                match.similarity,
                match.false_match_rate,
                match.fmr_upper_bound,
            )
        )
    compared.sort(key=lambda c: -c.similarity)
    matches = [c for c in compared if c.similarity >= threshold]
    unmatched = [c for c in compared if c.similarity < threshold]
    with services.write_lock, services.db.write() as session:
        services.ledger.append(
            session,
            request.event(
                "CompareFaces",
                image_sha256=source_image.sha256,
                parameters={
                    "threshold": threshold,
                    "target_image_sha256": target_image.sha256,
                    "policy": decision.policy,
                },
                results={
                    "similarities": [round(c.similarity, 4) for c in compared],
                    "matches": len(matches),
                },
            ),
        )
    return CompareResult(
        DetectedFace.of(probe),
        matches,
        unmatched,
        threshold,
        (source_image.width, source_image.height),
        (target_image.width, target_image.height),
    )


def detect_faces(services: Services, request: Request, image_bytes: bytes) -> DetectResult:
    request.actor.require("faces:detect")
    decision = enforce(services, request, "detect_faces")
    with services.gate.slot():
        image = read_image(services, image_bytes)
        faces = services.engine.detect(image.rgb)
    with services.write_lock, services.db.write() as session:
        services.ledger.append(
            session,
            request.event(
                "DetectFaces",
                image_sha256=image.sha256,
                parameters={"policy": decision.policy},
                results={"faces": len(faces)},
            ),
        )
    return DetectResult([DetectedFace.of(f) for f in faces], image.width, image.height)


# -- internals ---------------------------------------------------------------------------------


def _largest_face(
    services: Services, image: LoadedImage, where: str, engine: FaceEngine | None = None
) -> Face:
    faces = analyze(services, image, engine)
    if not faces:
        raise NoFaceDetected(f"no face was found in {where}")
    return faces[0]


def _chosen_face(faces: list[Face], near: Box | None) -> Face:
    """The largest face, or the face whose box overlaps ``near`` most (at least half)."""
    if not faces:
        raise NoFaceDetected("no face was found in the image")
    if near is None:
        return faces[0]
    best = max(faces, key=lambda f: f.box.iou(near))
    if best.box.iou(near) < 0.5:
        raise NoFaceDetected("no face was found where the face to search was marked")
    return best


def _search_allowed(
    services: Services,
    request: Request,
    operation: str,
    collection_id: str,
    threshold: float,
    max_faces: int,
) -> Decision:
    """Role, parameters, collection and use policy, checked before any image is read."""
    request.actor.require("faces:search")
    check_limit(max_faces, "max faces")
    check_threshold(threshold)
    with services.db.read() as session:
        require_collection(session, collection_id)
    return enforce(
        services,
        request,
        operation,
        collection_id=collection_id,
        threshold=threshold,
        max_results=max_faces,
    )


def _search(
    services: Services,
    engine: FaceEngine,
    collection_id: str,
    probe: np.ndarray,
    threshold: float,
    limit: int,
) -> list[FaceMatch]:
    """``engine``: the collection's, whose scale turns distances into similarities."""
    neighbors = services.indexes.current(collection_id).search(
        probe, limit, engine.max_distance(threshold)
    )
    if not neighbors:
        return []
    with services.db.read() as session:
        rows = {
            r.face_id: r
            for r in session.scalars(
                select(FaceRow).where(FaceRow.face_id.in_([n.face_id for n in neighbors]))
            )
        }
    matches = []
    for n in neighbors:
        row = rows.get(n.face_id)
        if row is None:  # deleted since the index answered
            continue
        # The index measured the distance already; no need to reload the descriptor.
        match = engine.match_for_distance(n.distance)
        if match.similarity >= threshold:
            matches.append(
                FaceMatch(
                    face_record(row),
                    match.similarity,
                    match.false_match_rate,
                    match.fmr_upper_bound,
                )
            )
    return matches


def _record_search(
    services: Services,
    request: Request,
    operation: str,
    collection_id: str,
    thresholds: tuple[float, Decision],
    max_faces: int,
    matches: list[FaceMatch],
    probe_crop: bytes | None = None,
    **fields: object,
) -> tuple[list[FaceMatch], Governance]:
    """The search's ledger event, its review task when the policy needs one (with the probe's
    crop, when given), and the matched faces' last use, in one transaction. Returns the
    matches as the caller may see them."""
    requested, decision = thresholds
    results = {"matches": [[m.face.face_id, round(m.similarity, 4)] for m in matches]}
    image_sha = fields.pop("image_sha256", None)
    ticket = None
    with services.write_lock, services.db.write() as session:
        if decision.reviewers_required:
            candidates = [
                (m.face.face_id, m.face.user_id, m.face.external_image_id, m.similarity)
                for m in matches
            ]
            ticket = review.open_task(
                session, request, decision, operation, collection_id, image_sha, candidates
            )
            results["review_task_id"] = ticket.task_id
            if probe_crop is not None and candidates:
                session.add(sealed_probe_crop(services, ticket.task_id, probe_crop))
                results["probe_crop_kept"] = True
        mark_used(session, [m.face.face_id for m in matches])
        services.ledger.append(
            session,
            request.event(
                operation,
                collection_id=collection_id,
                image_sha256=image_sha,
                parameters={
                    "threshold": decision.threshold,
                    "threshold_requested": requested,
                    "max_faces": max_faces,
                    "policy": decision.policy,
                    "legal_basis": decision.legal_basis.value,
                    **fields,
                },
                results=results,
            ),
        )
    if ticket is not None:
        matches = [replace(m, status="unconfirmed") for m in matches]
    governance = Governance(
        decision.policy,
        requested,
        decision.threshold,
        decision.legal_basis.value,
        ticket,
    )
    return matches, governance
