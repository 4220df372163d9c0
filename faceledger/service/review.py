"""Human review of search results (EU AI Act Art. 14(5); RCW 43.386 "meaningful human review").

Under a policy that needs review, a search opens a task holding the probe's hash and the
candidates, and returns them marked ``unconfirmed``. Reviewers confirm or reject each candidate
with a reason. A candidate is ``confirmed`` once the policy's number of different reviewers
have confirmed it, none of them the key that searched; one rejection makes it ``rejected``
(a lead someone doubts is not acted on). Every decision is on the ledger.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.delivery import Delivery
from faceledger.errors import InvalidParameterError, NotFoundError, RuleViolation
from faceledger.errors import PermissionDeniedError as Forbidden
from faceledger.governance.policies import Decision
from faceledger.service.auth import Role
from faceledger.service.common import Request, chronological_page, refusals_recorded
from faceledger.service.context import Services
from faceledger.service.results import Page, ReviewTicket
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
    services: Services,
    request: Request,
    *,
    status: str | None = "open",
    max_results: int = 100,
    next_token: str | None = None,
) -> Page[ReviewTask]:
    """Review tasks, oldest first (the queue's order)."""
    request.actor.require("review:read")
    if status not in (None, "open", "closed"):
        raise InvalidParameterError("status is open or closed")
    with services.db.read() as session:
        query = select(ReviewTaskRow)
        if _sees_own_only(request):
            query = query.where(ReviewTaskRow.requester_key_id == request.actor.key_id)
        if status:
            query = query.where(ReviewTaskRow.status == status)
        page = chronological_page(
            session,
            query,
            ReviewTaskRow.created_at,
            ReviewTaskRow.task_id,
            max_results=max_results,
            next_token=next_token,
        )
        return Page([task_view(session, row) for row in page.items], page.next_token)


def show_task(services: Services, request: Request, task_id: str) -> ReviewTask:
    request.actor.require("review:read")
    with services.db.read() as session:
        row = _require(session, task_id)
        if _sees_own_only(request) and row.requester_key_id != request.actor.key_id:
            raise NotFoundError(f"no review task {task_id} of this key's searches")
        return task_view(session, row)


def _sees_own_only(request: Request) -> bool:
    """Operators follow the tasks their own searches opened (to learn the outcome); reviewers
    and auditors see every task."""
    return request.actor.role == Role.OPERATOR


def decide(
    services: Services,
    request: Request,
    task_id: str,
    face_id: str,
    decision: str,
    reason: str,
) -> ReviewTask:
    """A reviewer's verdict on one candidate, with a reason. A decision that breaks a review
    rule is refused and recorded on the ledger as a refused attempt (after the transaction)."""
    request.actor.require("review:decide")
    if decision not in DECISIONS:
        raise InvalidParameterError("a decision is confirm or reject")
    if len(reason.strip()) < 3:
        raise InvalidParameterError("a decision needs a reason")
    with (
        refusals_recorded(services, request, "ReviewDecision", "rule", RuleViolation),
        services.write_lock,
        services.db.write() as session,
    ):
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
            raise RuleViolation(f"this candidate is already {candidate.status}")
        earlier = session.scalar(
            select(ReviewDecisionRow).where(
                ReviewDecisionRow.task_id == task_id,
                ReviewDecisionRow.face_id == face_id,
                ReviewDecisionRow.reviewer_key_id == request.actor.key_id,
            )
        )
        if earlier is not None:
            raise RuleViolation(
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
        closed_now = task.status == "closed"
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
        view = task_view(session, task)
    if closed_now:
        announce_outcome(services, view)
    return view


def announce_outcome(services: Services, task: ReviewTask) -> None:
    """POST the closed task's outcome to the configured review webhook, signed, so the
    searcher learns it without polling (delivery is retried in the background, never raised)."""
    url = services.settings.review_webhook_url.strip()
    if not url:
        return
    body = {
        "type": "ReviewTaskClosed",
        "task_id": task.task_id,
        "collection_id": task.collection_id,
        "requester_key_id": task.requester_key_id,
        "policy": task.policy,
        "case": task.case,
        "closed_at": task.closed_at.isoformat() if task.closed_at else None,
        "candidates": [
            {
                "face_id": c.face_id,
                "user_id": c.user_id,
                "external_image_id": c.external_image_id,
                "similarity": c.similarity,
                "status": c.status,
            }
            for c in task.candidates
        ],
    }
    secret = services.settings.review_webhook_secret.encode()
    services.courier.send(Delivery(url, json.dumps(body).encode(), secret))


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
