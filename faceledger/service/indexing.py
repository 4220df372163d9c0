"""Index faces, in three steps that can run in different places.

1. :func:`plan_index` - governance, before any pixel is looked at: the key's role, the
   collection and its face model, the use policy, consent.
2. :func:`analyze_image` - the work: decode, detect, judge quality, describe, cut review crops.
   A pure function of the image and the engine, so it runs here, on a thread, or as a Ray task
   on another machine (:mod:`faceledger.service.ingest`).
3. :func:`store_index` - the faces written and the IndexFaces event appended, in one
   transaction, by the process that holds the database: every write stays governed, on the
   ledger and in step with every index.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass

import numpy as np

from faceledger.errors import InvalidParameterError
from faceledger.governance.policies import Decision
from faceledger.imaging import ImageLimits, decode_image, sha256_hex
from faceledger.service.common import (
    LoadedImage,
    Request,
    check_limit,
    face_record,
    read_image,
    require_collection,
)
from faceledger.service.consent import require_consent
from faceledger.service.context import Services
from faceledger.service.crops import crop_jpeg, sealed_face_crop
from faceledger.service.policy import enforce
from faceledger.service.results import DetectedFace, IndexedFace, IndexResult, UnindexedFace
from faceledger.store.schema import FaceRow
from faceledger.vision import Face, FaceEngine, QualityLevel, gate_reasons

EXTERNAL_IMAGE_ID = re.compile(r"^[a-zA-Z0-9_.\-:]{1,255}$")


@dataclass(frozen=True)
class IndexPlan:
    """What governance decided about one index request."""

    collection_id: str
    model_version: str
    external_image_id: str | None
    max_faces: int | None
    level: QualityLevel
    keep_crops: bool
    decision: Decision
    consent_id: str | None


@dataclass(frozen=True)
class AnalyzedImage:
    """An image's faces as indexing needs them (picklable: it may come from another machine)."""

    sha256: str
    width: int
    height: int
    keep: list[Face]  # the faces to index, largest first
    unindexed: list[UnindexedFace]  # with the quality gate's (or max faces') reasons
    crops: list[bytes]  # a review crop (JPEG) per kept face, when the collection keeps them


def plan_index(
    services: Services,
    request: Request,
    collection_id: str,
    *,
    external_image_id: str | None = None,
    max_faces: int | None = None,
    quality_filter: QualityLevel | str = QualityLevel.AUTO,
) -> IndexPlan:
    request.actor.require("faces:write")
    if external_image_id is not None and not EXTERNAL_IMAGE_ID.match(external_image_id):
        raise InvalidParameterError(
            "an external image id is 1-255 characters of letters, digits and '_.-:'"
        )
    if max_faces is not None:
        check_limit(max_faces, "max faces", 100)
    level = quality_level(quality_filter)
    with services.db.read() as session:
        collection = require_collection(session, collection_id)
    decision = enforce(services, request, "index_faces", collection_id=collection_id)
    consent = require_consent(
        services, request, decision, collection_id, external_image_id=external_image_id
    )
    return IndexPlan(
        collection_id,
        collection.face_model_version,
        external_image_id,
        max_faces,
        level,
        collection.keep_face_crops,
        decision,
        consent,
    )


def analyze_image(
    engine: FaceEngine, limits: ImageLimits, image_bytes: bytes, plan: IndexPlan
) -> AnalyzedImage:
    """The faces of an image, judged and described: no database, no settings, no ledger."""
    image = LoadedImage(decode_image(image_bytes, limits), sha256_hex(image_bytes))
    return _analyzed(engine, image, plan)


def store_index(
    services: Services, request: Request, plan: IndexPlan, analyzed: AnalyzedImage
) -> IndexResult:
    rows = [_face_row(plan, analyzed, face, request) for face in analyzed.keep]
    with services.write_lock, services.db.write() as session:
        # Not when switched off meanwhile (or on after the image was analysed without them).
        keep_crops = require_collection(session, plan.collection_id).keep_face_crops
        crops = (
            [
                sealed_face_crop(services, row.face_id, jpeg)
                for row, jpeg in zip(rows, analyzed.crops, strict=True)
            ]
            if keep_crops and len(analyzed.crops) == len(rows)
            else []
        )
        session.add_all(rows)
        session.flush()
        session.add_all(crops)
        services.ledger.append(
            session,
            request.event(
                "IndexFaces",
                collection_id=plan.collection_id,
                image_sha256=analyzed.sha256,
                parameters={
                    "external_image_id": plan.external_image_id,
                    "max_faces": plan.max_faces,
                    "quality_filter": plan.level.value,
                    "policy": plan.decision.policy,
                    "legal_basis": plan.decision.legal_basis.value,
                    "consent_id": plan.consent_id,
                },
                results={
                    "indexed_face_ids": [r.face_id for r in rows],
                    "unindexed": [list(u.reasons) for u in analyzed.unindexed],
                    "crops_kept": len(crops),
                },
            ),
        )
    records = [
        IndexedFace(face_record(row), DetectedFace.of(face))
        for row, face in zip(rows, analyzed.keep, strict=True)
    ]
    return IndexResult(
        records,
        analyzed.unindexed,
        analyzed.width,
        analyzed.height,
        analyzed.sha256,
        plan.model_version,
    )


def index_faces(
    services: Services,
    request: Request,
    collection_id: str,
    image_bytes: bytes,
    *,
    external_image_id: str | None = None,
    max_faces: int | None = None,
    quality_filter: QualityLevel | str = QualityLevel.AUTO,
) -> IndexResult:
    """Store the faces of an image. Faces the quality gate drops, and those beyond
    ``max_faces`` (the largest and most confident are kept), come back with their reasons."""
    plan = plan_index(
        services,
        request,
        collection_id,
        external_image_id=external_image_id,
        max_faces=max_faces,
        quality_filter=quality_filter,
    )
    engine = services.engine_for(plan.model_version)
    with services.gate.slot():
        analyzed = _analyzed(engine, read_image(services, image_bytes), plan)
    return store_index(services, request, plan, analyzed)


def quality_level(value: QualityLevel | str) -> QualityLevel:
    try:
        return QualityLevel(value)
    except ValueError:
        raise InvalidParameterError(
            "quality filter is one of NONE, AUTO, LOW, MEDIUM, HIGH"
        ) from None


def _analyzed(engine: FaceEngine, image: LoadedImage, plan: IndexPlan) -> AnalyzedImage:
    keep, unindexed = _filter_faces(engine.analyze(image.rgb), plan.level, plan.max_faces)
    crops = [crop_jpeg(image, face) for face in keep] if plan.keep_crops else []
    return AnalyzedImage(image.sha256, image.width, image.height, keep, unindexed, crops)


def _filter_faces(
    faces: list[Face], level: QualityLevel, max_faces: int | None
) -> tuple[list[Face], list[UnindexedFace]]:
    passed, unindexed = [], []
    for face in faces:
        reasons = gate_reasons(face.quality, level)
        if reasons:
            unindexed.append(UnindexedFace(DetectedFace.of(face), tuple(r.value for r in reasons)))
        else:
            passed.append(face)
    passed.sort(key=lambda f: (-f.box.area, -f.confidence))
    if max_faces is not None and len(passed) > max_faces:
        unindexed += [
            UnindexedFace(DetectedFace.of(f), ("EXCEEDS_MAX_FACES",)) for f in passed[max_faces:]
        ]
        passed = passed[:max_faces]
    return passed, unindexed


def _face_row(plan: IndexPlan, image: AnalyzedImage, face: Face, request: Request) -> FaceRow:
    assert face.embedding is not None
    return FaceRow(
        face_id=str(uuid.uuid4()),
        collection_id=plan.collection_id,
        external_image_id=plan.external_image_id,
        image_id=image.sha256,
        box=asdict(face.box) | {"image_width": image.width, "image_height": image.height},
        landmarks=[[p.x, p.y] for p in face.landmarks],
        quality=asdict(face.quality),
        confidence=face.confidence,
        embedding=np.asarray(face.embedding, dtype="<f4").tobytes(),
        created_by=request.actor.key_id,
        policy=plan.decision.policy,
    )
