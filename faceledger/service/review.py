"""Human review of search results (EU AI Act Art. 14(5); RCW 43.386 "meaningful human review").

Under a policy that needs review, a search opens a task holding the probe's hash and the
candidates, and returns them marked ``unconfirmed``. Reviewers confirm or reject each candidate
with a reason. A candidate is ``confirmed`` once the policy's number of different reviewers
have confirmed it, none of them the key that searched; one rejection makes it ``rejected``
(a lead someone doubts is not acted on). Every decision is on the ledger.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.errors import AlreadyExistsError, InvalidParameterError, NotFoundError
from faceledger.errors import PermissionDeniedError as Forbidden
from faceledger.governance.policies import Decision
from faceledger.service.common import Request
from faceledger.service.context import Services
from faceledger.service.results import ReviewTicket
from faceledger.store.schema import (
    ReviewCandidateRow,
    ReviewDecisionRow,
    ReviewTaskRow,
    utcnow,
)

DECISIONS = ("confirm", "reject")


@dataclass(frozen=True)
class Candidate:
    face_id: str
    user_id: str | None
    external_image_id: str | None
    similarity: float
    status: str
    confirmations: int
    rejections: int


@dataclass(frozen=True)
class ReviewDecision:
    face_id: str
    reviewer_key_id: str
    decision: str
    reason: str
    decided_at: dt.datetime


@dataclass(frozen=True)
class ReviewTask:
    task_id: str
    created_at: dt.datetime
    requester_key_id: str
    policy: str
    operation: str
    collection_id: str
    probe_sha256: str | None
    purpose: str | None
    case: str | None
    reviewers_required: int
    status: str
    closed_at: dt.datetime | None
    candidates: list[Candidate]
    decisions: list[ReviewDecision]


def open_task(
    session: Session,
    request: Request,
    decision: Decision,
    operation: str,
    collection_id: str,
    probe_sha256: str | None,
    candidates: list[tuple[str, str | None, str | None, float]],
) -> ReviewTicket:
    """Inside the search's own transaction: a task for ``candidates`` (face id, user id,
    external image id, similarity). With none it is closed at once: nothing to review."""
    task_id = str(uuid.uuid4())
    session.add(
        ReviewTaskRow(
            task_id=task_id,
            requester_key_id=request.actor.key_id,
            policy=decision.policy,
            operation=operation,
            collection_id=collection_id,
            probe_sha256=probe_sha256,
            purpose=request.purpose,
            case=request.case,
            reviewers_required=decision.reviewers_required,
            status="open" if candidates else "closed",
            closed_at=None if candidates else utcnow(),
        )
    )
    session.flush()
    session.add_all(
        ReviewCandidateRow(
            task_id=task_id,
            face_id=face_id,
            user_id=user_id,
            external_image_id=external_id,
            similarity=similarity,
        )
        for face_id, user_id, external_id, similarity in candidates
    )
    status = "unconfirmed" if candidates else "closed"
    return ReviewTicket(task_id, decision.reviewers_required, status)


def list_tasks(
    services: Services, request: Request, *, status: str | None = "open", limit: int = 100
) -> list[ReviewTask]:
    request.actor.require("review:read")
    if status not in (None, "open", "closed"):
        raise InvalidParameterError("status is open or closed")
    with services.db.read() as session:
        query = select(ReviewTaskRow).order_by(ReviewTaskRow.created_at).limit(limit)
        if status:
            query = query.where(ReviewTaskRow.status == status)
        return [task_view(session, row) for row in session.scalars(query)]


def show_task(services: Services, request: Request, task_id: str) -> ReviewTask:
    request.actor.require("review:read")
    with services.db.read() as session:
        return task_view(session, _require(session, task_id))


def decide(
    services: Services,
    request: Request,
    task_id: str,
    face_id: str,
    decision: str,
    reason: str,
) -> ReviewTask:
    """A reviewer's verdict on one candidate, with a reason."""
    request.actor.require("review:decide")
    if decision not in DECISIONS:
        raise InvalidParameterError("a decision is confirm or reject")
    if len(reason.strip()) < 3:
        raise InvalidParameterError("a decision needs a reason")
    with services.write_lock, services.db.write() as session:
        task = _require(session, task_id)
        if task.requester_key_id == request.actor.key_id:
            raise Forbidden("the key that ran the search cannot review its results")
        candidate = session.scalar(
            select(ReviewCandidateRow).where(
                ReviewCandidateRow.task_id == task_id, ReviewCandidateRow.face_id == face_id
            )
        )
        if candidate is None:
            raise NotFoundError(f"face {face_id} is not a candidate of review task {task_id}")
        if candidate.status != "unconfirmed":
            raise InvalidParameterError(f"this candidate is already {candidate.status}")
        earlier = session.scalar(
            select(ReviewDecisionRow).where(
                ReviewDecisionRow.task_id == task_id,
                ReviewDecisionRow.face_id == face_id,
                ReviewDecisionRow.reviewer_key_id == request.actor.key_id,
            )
        )
        if earlier is not None:
            raise AlreadyExistsError(
                "this reviewer has decided on this candidate already; another reviewer must"
            )
        session.add(
            ReviewDecisionRow(
                task_id=task_id,
                face_id=face_id,
                reviewer_key_id=request.actor.key_id,
                decision=decision,
                reason=reason.strip(),
            )
        )
        session.flush()
        candidate.status = _status(session, task, face_id)
        remaining = session.scalar(
            select(ReviewCandidateRow.id).where(
                ReviewCandidateRow.task_id == task_id,
                ReviewCandidateRow.status == "unconfirmed",
            )
        )
        if remaining is None:
            task.status, task.closed_at = "closed", utcnow()
        services.ledger.append(
            session,
            request.event(
                "ReviewDecision",
                collection_id=task.collection_id,
                parameters={"task_id": task_id, "face_id": face_id, "decision": decision},
                results={"candidate_status": candidate.status, "task_status": task.status},
            ),
        )
        session.flush()
        return task_view(session, task)


def _status(session: Session, task: ReviewTaskRow, face_id: str) -> str:
    decisions = list(
        session.scalars(
            select(ReviewDecisionRow.decision).where(
                ReviewDecisionRow.task_id == task.task_id, ReviewDecisionRow.face_id == face_id
            )
        )
    )
    if "reject" in decisions:
        return "rejected"
    if decisions.count("confirm") >= task.reviewers_required:
        return "confirmed"
    return "unconfirmed"


def _require(session: Session, task_id: str) -> ReviewTaskRow:
    row = session.get(ReviewTaskRow, task_id)
    if row is None:
        raise NotFoundError(f"no review task {task_id}")
    return row


def task_view(session: Session, row: ReviewTaskRow) -> ReviewTask:
    decisions = [
        ReviewDecision(d.face_id, d.reviewer_key_id, d.decision, d.reason, d.decided_at)
        for d in session.scalars(
            select(ReviewDecisionRow)
            .where(ReviewDecisionRow.task_id == row.task_id)
            .order_by(ReviewDecisionRow.id)
        )
    ]
    candidates = [
        Candidate(
            c.face_id,
            c.user_id,
            c.external_image_id,
            c.similarity,
            c.status,
            sum(1 for d in decisions if d.face_id == c.face_id and d.decision == "confirm"),
            sum(1 for d in decisions if d.face_id == c.face_id and d.decision == "reject"),
        )
        for c in session.scalars(
            select(ReviewCandidateRow)
            .where(ReviewCandidateRow.task_id == row.task_id)
            .order_by(ReviewCandidateRow.similarity.desc())
        )
    ]
    return ReviewTask(
        row.task_id,
        row.created_at,
        row.requester_key_id,
        row.policy,
        row.operation,
        row.collection_id,
        row.probe_sha256,
        row.purpose,
        row.case,
        row.reviewers_required,
        row.status,
        row.closed_at,
        candidates,
        decisions,
    )
