"""Retention: delete what is due, and say what was deleted.

- Faces: a collection's ``retention_days`` after the face's last use (its creation when never
  returned by a search), else the retention of the policy it was enrolled under
  (``faces_after_last_use_days``). Rows, vectors in the index and review candidates go together.
- Review data: tasks older than the policy's ``search_records_days`` (the probe's hash and the
  candidates of a search), and closed tasks older than its ``review_records_days``.

Each run is one ledger event listing the deleted face ids and task ids (no biometric data).
The ledger itself is kept whole: it is the record that uses happened. Time is a parameter, so
tests inject it instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import delete, select

from faceledger.errors import InvalidParameterError
from faceledger.service.common import Request, require_collection
from faceledger.service.context import Services
from faceledger.service.policy import all_policies
from faceledger.service.video import expire_jobs
from faceledger.store.feed import prune_changes
from faceledger.store.schema import (
    CollectionRow,
    FaceRow,
    ReviewCandidateRow,
    ReviewTaskRow,
    as_utc,
    utcnow,
)


@dataclass
class RetentionRun:
    ran_at: dt.datetime
    deleted_faces: dict[str, list[str]] = field(default_factory=dict)  # by collection
    deleted_review_tasks: list[str] = field(default_factory=list)
    deleted_video_jobs: list[str] = field(default_factory=list)

    @property
    def face_count(self) -> int:
        return sum(len(ids) for ids in self.deleted_faces.values())


def set_collection_retention(
    services: Services, request: Request, collection_id: str, days: int | None
) -> None:
    """Faces of this collection are deleted ``days`` after last use (None: per policy)."""
    request.actor.require("collections:manage")
    if days is not None and not 1 <= days <= 36500:
        raise InvalidParameterError("retention is 1 to 36500 days")
    with services.write_lock, services.db.write() as session:
        row = require_collection(session, collection_id)
        previous, row.retention_days = row.retention_days, days
        services.ledger.append(
            session,
            request.event(
                "SetRetention",
                collection_id=collection_id,
                parameters={"retention_days": days, "previous": previous},
            ),
        )


def run_retention(
    services: Services,
    request: Request,
    now: dt.datetime | None = None,
    *,
    record_empty: bool = True,
) -> RetentionRun:
    """Delete what is due at ``now``. ``record_empty=False`` (the server's periodic runs)
    leaves no ledger event when nothing was due."""
    request.actor.require("retention:run")
    services.forget_saved_index()
    now = now or utcnow()
    run = RetentionRun(now)
    with services.write_lock, services.db.write() as session:
        policies = all_policies(session)
        windows = {
            c.collection_id: c.retention_days for c in session.scalars(select(CollectionRow))
        }
        faces = session.execute(
            select(
                FaceRow.face_id,
                FaceRow.collection_id,
                FaceRow.policy,
                FaceRow.created_at,
                FaceRow.last_used_at,
            )
        )
        for face_id, collection_id, policy, created, used in faces:
            days = windows.get(collection_id)
            if days is None and policy in policies:
                days = policies[policy].retention.faces_after_last_use_days
            if days is not None and as_utc(used or created) + dt.timedelta(days=days) <= now:
                run.deleted_faces.setdefault(collection_id, []).append(face_id)
        due_faces = [f for ids in run.deleted_faces.values() for f in ids]
        for task in session.scalars(select(ReviewTaskRow)):
            retention = policies[task.policy].retention if task.policy in policies else None
            if retention is None:
                continue
            age = now - as_utc(task.created_at)
            search_days, review_days = (
                retention.search_records_days,
                retention.review_records_days,
            )
            expired = search_days is not None and age >= dt.timedelta(days=search_days)
            closed_expired = (
                task.status == "closed"
                and review_days is not None
                and age >= dt.timedelta(days=review_days)
            )
            if expired or closed_expired:
                run.deleted_review_tasks.append(task.task_id)
        session.execute(delete(ReviewCandidateRow).where(ReviewCandidateRow.face_id.in_(due_faces)))
        session.execute(delete(FaceRow).where(FaceRow.face_id.in_(due_faces)))
        session.execute(
            delete(ReviewTaskRow).where(ReviewTaskRow.task_id.in_(run.deleted_review_tasks))
        )
        # Housekeeping, not a use: the index feed keeps its newest changes only.
        run.deleted_video_jobs = expire_jobs(
            session,
            now,
            {name: p.retention.search_records_days for name, p in policies.items()},
        )
        prune_changes(session)
        if not (record_empty or due_faces or run.deleted_review_tasks or run.deleted_video_jobs):
            return run
        services.ledger.append(
            session,
            request.event(
                "RetentionRun",
                parameters={"now": now.isoformat()},
                results={
                    "deleted_faces": run.deleted_faces,
                    "deleted_review_tasks": run.deleted_review_tasks,
                    "deleted_video_jobs": run.deleted_video_jobs,
                },
            ),
        )
    return run
