"""Consent on record (BIPA: a written release before biometric data is collected).

Consent is recorded per user id or external image id in a collection, or once for a whole
collection with a document reference when enrolment into it is covered by a consent process run
elsewhere (so unchanged Rekognition IndexFaces calls work where consent is on record). Under a
policy that requires consent, indexing without any is refused with a message saying how to
record it. Withdrawn consent no longer counts; erasure (see erasure.py) removes the data.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from faceledger.errors import InvalidParameterError, NotFoundError, PolicyViolation
from faceledger.governance.policies import Decision
from faceledger.service.common import (
    Request,
    chronological_page,
    record_refusal,
    require_collection,
)
from faceledger.service.context import Services
from faceledger.service.results import Page
from faceledger.store.schema import ConsentRow, FaceRow, utcnow

SUBJECT_KINDS = ("user", "external_image", "collection")


@dataclass(frozen=True)
class Consent:
    consent_id: str
    collection_id: str
    subject_kind: str
    subject: str | None
    consented_by: str
    consented_at: dt.datetime
    scope: str
    document_reference: str
    recorded_at: dt.datetime
    recorded_by: str
    withdrawn_at: dt.datetime | None

    @classmethod
    def of(cls, row: ConsentRow) -> Consent:
        return cls(
            row.consent_id,
            row.collection_id,
            row.subject_kind,
            row.subject,
            row.consented_by,
            row.consented_at,
            row.scope,
            row.document_reference,
            row.recorded_at,
            row.recorded_by,
            row.withdrawn_at,
        )


def record_consent(
    services: Services,
    request: Request,
    collection_id: str,
    *,
    subject_kind: str,
    subject: str | None,
    consented_by: str,
    document_reference: str,
    scope: str = "enrolment and search in this collection",
    consented_at: dt.datetime | None = None,
) -> Consent:
    request.actor.require("consent:manage")
    if subject_kind not in SUBJECT_KINDS:
        raise InvalidParameterError(f"subject_kind is one of {', '.join(SUBJECT_KINDS)}")
    if (subject_kind == "collection") != (not subject):
        raise InvalidParameterError(
            "give a subject (user id or external image id) unless consent covers the collection"
        )
    if not consented_by.strip() or not document_reference.strip():
        raise InvalidParameterError(
            "consent needs who consented (or who ran the consent process) and a document "
            "reference where the signed release is kept"
        )
    row = ConsentRow(
        consent_id=str(uuid.uuid4()),
        collection_id=collection_id,
        subject_kind=subject_kind,
        subject=subject or None,
        consented_by=consented_by.strip(),
        consented_at=consented_at or utcnow(),
        scope=scope,
        document_reference=document_reference.strip(),
        recorded_by=request.actor.key_id,
    )
    with services.write_lock, services.db.write() as session:
        require_collection(session, collection_id)
        session.add(row)
        session.flush()
        services.ledger.append(
            session,
            request.event(
                "RecordConsent",
                collection_id=collection_id,
                parameters={
                    "consent_id": row.consent_id,
                    "subject_kind": subject_kind,
                    "subject": subject,
                    "document_reference": row.document_reference,
                },
            ),
        )
        return Consent.of(row)


def list_consents(
    services: Services,
    request: Request,
    collection_id: str,
    *,
    max_results: int = 1000,
    next_token: str | None = None,
) -> Page[Consent]:
    """A collection's consent records, withdrawn ones too, in the order they were recorded."""
    request.actor.require("consent:manage")
    with services.db.read() as session:
        require_collection(session, collection_id)
        page = chronological_page(
            session,
            select(ConsentRow).where(ConsentRow.collection_id == collection_id),
            ConsentRow.recorded_at,
            ConsentRow.consent_id,
            max_results=max_results,
            next_token=next_token,
        )
        return Page([Consent.of(r) for r in page.items], page.next_token)


def withdraw_consent(services: Services, request: Request, consent_id: str) -> Consent:
    request.actor.require("consent:manage")
    with services.write_lock, services.db.write() as session:
        row = session.get(ConsentRow, consent_id)
        if row is None:
            raise NotFoundError(f"no consent record {consent_id}")
        if row.withdrawn_at is None:
            row.withdrawn_at = utcnow()
            services.ledger.append(
                session,
                request.event(
                    "WithdrawConsent",
                    collection_id=row.collection_id,
                    parameters={"consent_id": consent_id},
                ),
            )
        return Consent.of(row)


def require_consent(
    services: Services,
    request: Request,
    decision: Decision,
    collection_id: str,
    *,
    external_image_id: str | None = None,
    user_id: str | None = None,
) -> str | None:
    """The consent record covering an enrolment, when the policy ``decision`` came from
    requires one: the collection's, the external image id's or the user's. Returns its id (None
    when no consent is required); refuses, saying how to record consent, when there is none."""
    if not decision.consent_required_to_enrol:
        return None
    with services.db.read() as session:
        found = find_consent(session, collection_id, external_image_id, user_id)
    if found is not None:
        return found
    operation = "index_faces" if user_id is None else "associate_faces"
    message = (
        f"policy {decision.policy!r} requires consent on record to enrol faces into "
        f"{collection_id!r}: record it for this "
        + ("external image id" if external_image_id else "user" if user_id else "image")
        + " or for the whole collection (POST /v1/collections/{id}/consents, or "
        "`faceledger consent record`)"
        + ("" if external_image_id or user_id else "; or give the image an external image id")
    )
    actor = request.actor
    record_refusal(services, actor.key_id, actor.role.value, operation, message, "policy")
    raise PolicyViolation(message)


def find_consent(
    session: Session,
    collection_id: str,
    external_image_id: str | None,
    user_id: str | None,
) -> str | None:
    covers = [ConsentRow.subject_kind == "collection"]
    if external_image_id:
        covers.append(
            (ConsentRow.subject_kind == "external_image")
            & (ConsentRow.subject == external_image_id)
        )
    if user_id:
        covers.append((ConsentRow.subject_kind == "user") & (ConsentRow.subject == user_id))
    return session.scalar(
        select(ConsentRow.consent_id).where(
            ConsentRow.collection_id == collection_id,
            ConsentRow.withdrawn_at.is_(None),
            or_(*covers),
        )
    )


def mark_used(session: Session, face_ids: Sequence[str], when: dt.datetime | None = None) -> None:
    """Faces returned by a search were used now: retention after last use counts from here."""
    if face_ids:
        when = when or utcnow()
        session.execute(
            update(FaceRow)
            .where(
                FaceRow.face_id.in_(list(face_ids)),
                or_(FaceRow.last_used_at.is_(None), FaceRow.last_used_at < when),
            )
            .values(last_used_at=when)
        )
