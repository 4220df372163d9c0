"""Erasure of a data subject (deletion on request): every face, face crop, vector, user,
consent record and review candidate of one user id or external image id, across collections, in one
transaction, with a signed receipt.

The ledger keeps what happened (that faces were indexed, searched, erased; ids and scores, never
biometric data) because it cannot be edited without breaking its hash chain; the erasure event
names the subject only by the SHA-256 of its identifier, so the ledger does not repeat it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from faceledger.errors import InvalidParameterError
from faceledger.governance.ledger import canonical_json
from faceledger.governance.signing import signature_valid
from faceledger.service.common import Request
from faceledger.service.context import Services
from faceledger.service.video import forget_video_matches
from faceledger.store.schema import (
    ConsentRow,
    FaceCropRow,
    FaceRow,
    ReviewCandidateRow,
    ReviewDecisionRow,
    UserRow,
    utcnow,
)

RECEIPT_VERSION = 1


@dataclass(frozen=True)
class Subject:
    """One data subject: a user id or an external image id, in some collections or all."""

    kind: str  # user | external_image
    id: str
    collections: tuple[str, ...] | None

    @classmethod
    def of(
        cls,
        user_id: str | None,
        external_image_id: str | None,
        collections: list[str] | None,
    ) -> Subject:
        if (user_id is None) == (external_image_id is None):
            raise InvalidParameterError("erase by exactly one of: user id, external image id")
        subject = user_id if user_id is not None else external_image_id
        assert subject is not None
        if not subject.strip():
            raise InvalidParameterError("the subject identifier is empty")
        kind = "user" if user_id is not None else "external_image"
        return cls(kind, subject, tuple(collections) if collections else None)


@dataclass(frozen=True)
class Held:
    """What is held about a subject: what an erasure removes."""

    faces: dict[str, list[str]]  # collection id -> face ids
    users: list[tuple[str, str]]  # (collection id, user id)
    consent_ids: list[str]
    review_candidates: list[int]
    face_crops: list[str]

    @property
    def face_ids(self) -> list[str]:
        return [face_id for ids in self.faces.values() for face_id in ids]


def held_about(session: Session, subject: Subject) -> Held:
    faces = select(FaceRow).where(
        FaceRow.user_id == subject.id
        if subject.kind == "user"
        else FaceRow.external_image_id == subject.id
    )
    if subject.collections:
        faces = faces.where(FaceRow.collection_id.in_(subject.collections))
    by_collection: dict[str, list[str]] = {}
    for row in session.scalars(faces.order_by(FaceRow.collection_id, FaceRow.face_id)):
        by_collection.setdefault(row.collection_id, []).append(row.face_id)
    face_ids = [face_id for ids in by_collection.values() for face_id in ids]
    users = []
    if subject.kind == "user":
        found = select(UserRow).where(UserRow.user_id == subject.id)
        if subject.collections:
            found = found.where(UserRow.collection_id.in_(subject.collections))
        users = [(u.collection_id, u.user_id) for u in session.scalars(found)]
    consents = select(ConsentRow.consent_id).where(
        ConsentRow.subject_kind == subject.kind, ConsentRow.subject == subject.id
    )
    if subject.collections:
        consents = consents.where(ConsentRow.collection_id.in_(subject.collections))
    named = [ReviewCandidateRow.face_id.in_(face_ids)]
    if subject.kind == "user":
        named.append(ReviewCandidateRow.user_id == subject.id)
    return Held(
        by_collection,
        users,
        sorted(session.scalars(consents)),
        list(session.scalars(select(ReviewCandidateRow.id).where(or_(*named)))),
        sorted(
            session.scalars(select(FaceCropRow.face_id).where(FaceCropRow.face_id.in_(face_ids)))
        ),
    )


def preview_erasure(
    services: Services,
    request: Request,
    *,
    user_id: str | None = None,
    external_image_id: str | None = None,
    collections: list[str] | None = None,
) -> Held:
    """What :func:`erase_subject` would remove now, removing nothing (for a person to check
    before they erase)."""
    request.actor.require("erasure:run")
    subject = Subject.of(user_id, external_image_id, collections)
    with services.db.read() as session:
        return held_about(session, subject)


def erase_subject(
    services: Services,
    request: Request,
    *,
    user_id: str | None = None,
    external_image_id: str | None = None,
    collections: list[str] | None = None,
) -> dict[str, Any]:
    """Delete everything held about one subject; returns the signed receipt."""
    request.actor.require("erasure:run")
    subject = Subject.of(user_id, external_image_id, collections)
    subject_kind = subject.kind
    services.forget_saved_index()
    with services.write_lock, services.db.write() as session:
        held = held_about(session, subject)
        face_ids, by_collection, users = held.face_ids, held.faces, held.users
        consent_ids, candidates, crops = held.consent_ids, held.review_candidates, held.face_crops
        session.execute(delete(ReviewDecisionRow).where(ReviewDecisionRow.face_id.in_(face_ids)))
        session.execute(delete(ReviewCandidateRow).where(ReviewCandidateRow.id.in_(candidates)))
        session.execute(delete(ConsentRow).where(ConsentRow.consent_id.in_(consent_ids)))
        session.execute(delete(FaceRow).where(FaceRow.face_id.in_(face_ids)))
        video_matches = forget_video_matches(session, set(face_ids))
        for collection_id, uid in users:
            session.execute(
                delete(UserRow).where(
                    UserRow.collection_id == collection_id, UserRow.user_id == uid
                )
            )
        erasure_id = str(uuid.uuid4())
        subject_sha256 = hashlib.sha256(f"{subject_kind}:{subject.id}".encode()).hexdigest()
        event = services.ledger.append(
            session,
            request.event(
                "EraseSubject",
                parameters={
                    "erasure_id": erasure_id,
                    "subject_kind": subject_kind,
                    "subject_sha256": subject_sha256,
                    "collections": collections,
                },
                results={
                    "faces": len(face_ids),
                    "face_crops": len(crops),
                    "users": len(users),
                    "consents": len(consent_ids),
                    "review_candidates": len(candidates),
                    "video_matches": video_matches,
                },
            ),
        )
        session.flush()
        seq, event_hash = event.seq, event.hash
    body = {
        "receipt_version": RECEIPT_VERSION,
        "erasure_id": erasure_id,
        "erased_at": utcnow().isoformat(),
        "requested_by": request.actor.key_id,
        "purpose": request.purpose,
        "subject": {"kind": subject_kind, "id": subject.id, "sha256": subject_sha256},
        "collections_searched": collections or "all",
        "removed": {
            "faces": {c: sorted(ids) for c, ids in sorted(by_collection.items())},
            "index_entries": len(face_ids),
            "face_crops": crops,
            "users": [{"collection_id": c, "user_id": u} for c, u in users],
            "consent_records": sorted(consent_ids),
            "review_candidates": len(candidates),
            "video_search_matches": video_matches,
        },
        "kept": "the ledger's records of earlier uses (ids and scores, no biometric data); "
        "the ledger names this erasure by the subject's SHA-256 only",
        "ledger_event": {"seq": seq, "hash": event_hash},
        "public_key_id": services.ledger.signer.key_id,
    }
    signature = services.ledger.signer.sign(canonical_json(body).encode())
    return {"receipt": body, "signature": signature, "algorithm": "Ed25519"}


def receipt_valid(signed: dict[str, Any], public_key: Ed25519PublicKey) -> bool:
    """Check a receipt against the server's published public key."""
    message = canonical_json(signed["receipt"]).encode()
    return signature_valid(public_key, message, signed["signature"])
