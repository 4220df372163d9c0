"""The database schema (SQLAlchemy 2). Portable between SQLite and PostgreSQL.

Images are never stored: a face row keeps the SHA-256 of the image it came from, its box,
landmarks, quality and descriptor. Alembic migrations in ``migrations/`` create these tables;
change both together.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import numpy as np
from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; everything is stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class UtcDateTime(TypeDecorator):
    """A timestamp that always comes back with its zone (UTC): SQLite stores none, and a naive
    datetime would leave the API without one."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        return None if value is None else as_utc(value).astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: object
    ) -> dt.datetime | None:
        return None if value is None else as_utc(value)


DESCRIPTOR_DIMENSION = 128


class Descriptor(TypeDecorator):
    """A face descriptor, bytes in Python (float32, little-endian) wherever it is stored:
    a BLOB on SQLite, pgvector's ``vector(128)`` on PostgreSQL."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            from pgvector.sqlalchemy import VECTOR

            return dialect.type_descriptor(VECTOR(DESCRIPTOR_DIMENSION))
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: bytes | None, dialect: Any) -> Any:
        if value is None or dialect.name != "postgresql":
            return value
        return np.frombuffer(value, dtype="<f4")

    def process_result_value(self, value: Any, dialect: Any) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        return np.asarray(value, dtype="<f4").tobytes()


class Base(DeclarativeBase):
    pass


class CollectionRow(Base):
    __tablename__ = "collections"

    collection_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    face_model_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    # Faces are deleted this many days after their last use (NULL: the enrolling policy's).
    retention_days: Mapped[int | None] = mapped_column(Integer)
    # Whether each indexed face keeps an encrypted crop for human review (FaceCropRow).
    keep_face_crops: Mapped[bool] = mapped_column(default=False)


class FaceRow(Base):
    __tablename__ = "faces"
    __table_args__ = (Index("ix_faces_collection_created", "collection_id", "created_at"),)

    face_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.collection_id", ondelete="CASCADE"), index=True
    )
    external_image_id: Mapped[str | None] = mapped_column(String(255), index=True)
    image_id: Mapped[str] = mapped_column(String(64))  # SHA-256 of the image bytes
    box: Mapped[dict] = mapped_column(JSON)
    landmarks: Mapped[list] = mapped_column(JSON)
    quality: Mapped[dict] = mapped_column(JSON)
    confidence: Mapped[float] = mapped_column(Float)
    embedding: Mapped[bytes] = mapped_column(Descriptor)
    user_id: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    # When the face was last returned by a search: retention counts from here.
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    policy: Mapped[str | None] = mapped_column(String(64))  # the policy it was enrolled under


class FaceCropRow(Base):
    """The small aligned crop a reviewer looks at: JPEG, sealed with AES-256-GCM under the crops
    key in the data directory, the face id as associated data (a crop moved to another face
    does not open). Deleted with its face by the foreign key."""

    __tablename__ = "face_crops"

    face_id: Mapped[str] = mapped_column(
        ForeignKey("faces.face_id", ondelete="CASCADE"), primary_key=True
    )
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("collection_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.collection_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    # AWS Signature V4 needs the secret itself to recompute signatures: kept encrypted with the
    # server's secrets key (AES-GCM), never in clear. NULL for bearer-only keys.
    aws_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    default_purpose: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # The use policy the key acts under (NULL: the server's default policy), and the case or
    # reference number its Rekognition requests carry when they send none.
    policy: Mapped[str | None] = mapped_column(String(64))
    default_case: Mapped[str | None] = mapped_column(String(255))


class PolicyRow(Base):
    __tablename__ = "policies"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    definition: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))


class ConsentRow(Base):
    """Consent on record: for one user id or external image id in a collection, or for the
    whole collection (``subject_kind`` "collection") when enrolment is covered elsewhere."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_subject", "collection_id", "subject_kind", "subject"),)

    consent_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.collection_id", ondelete="CASCADE")
    )
    subject_kind: Mapped[str] = mapped_column(String(24))  # user | external_image | collection
    subject: Mapped[str | None] = mapped_column(String(255))
    consented_by: Mapped[str] = mapped_column(String(255))
    consented_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    scope: Mapped[str] = mapped_column(Text)
    document_reference: Mapped[str] = mapped_column(String(255))
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(64))
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class ReviewTaskRow(Base):
    """Search results waiting for people to confirm or reject them."""

    __tablename__ = "review_tasks"

    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    requester_key_id: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(64))
    collection_id: Mapped[str] = mapped_column(String(255), index=True)
    probe_sha256: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(Text)
    case: Mapped[str | None] = mapped_column(String(255))
    reviewers_required: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class ProbeCropRow(Base):
    """The crop of the face a review task's search was made with, sealed as face crops are
    (the task id as associated data); it goes when the task's records expire."""

    __tablename__ = "review_probe_crops"

    task_id: Mapped[str] = mapped_column(
        ForeignKey("review_tasks.task_id", ondelete="CASCADE"), primary_key=True
    )
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class ConsoleSessionRow(Base):
    """A console sign-in: the browser holds the token, the database its SHA-256 only."""

    __tablename__ = "console_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class ReviewCandidateRow(Base):
    __tablename__ = "review_candidates"
    __table_args__ = (UniqueConstraint("task_id", "face_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(
        ForeignKey("review_tasks.task_id", ondelete="CASCADE"), index=True
    )
    face_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[str | None] = mapped_column(String(255))
    external_image_id: Mapped[str | None] = mapped_column(String(255))
    similarity: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="unconfirmed")


class ReviewDecisionRow(Base):
    __tablename__ = "review_decisions"
    __table_args__ = (UniqueConstraint("task_id", "face_id", "reviewer_key_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(
        ForeignKey("review_tasks.task_id", ondelete="CASCADE"), index=True
    )
    face_id: Mapped[str] = mapped_column(String(36))
    reviewer_key_id: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))  # confirm | reject
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class VideoJobRow(Base):
    """A stored-video job (face detection or collection search): its request, its progress
    and its outcome. Results are rows of :class:`VideoResultRow`."""

    __tablename__ = "video_jobs"
    __table_args__ = (Index("ix_video_jobs_token", "requester_key_id", "client_request_token"),)

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # detect | search
    status: Mapped[str] = mapped_column(String(16))  # IN_PROGRESS | SUCCEEDED | FAILED
    status_message: Mapped[str | None] = mapped_column(Text)
    collection_id: Mapped[str | None] = mapped_column(String(255))
    video: Mapped[dict] = mapped_column(JSON)  # bucket, name (as asked) and path (resolved)
    video_sha256: Mapped[str | None] = mapped_column(String(64))
    parameters: Mapped[dict] = mapped_column(JSON)  # sample rate, thresholds, job tag ...
    request_sha256: Mapped[str] = mapped_column(String(64))  # for ClientRequestToken
    client_request_token: Mapped[str | None] = mapped_column(String(64))
    requester_key_id: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(Text)
    case: Mapped[str | None] = mapped_column(String(255))
    legal_basis: Mapped[str | None] = mapped_column(String(32))
    metadata_: Mapped[dict | None] = mapped_column("metadata", JSON)
    frames_done: Mapped[int] = mapped_column(Integer, default=0)
    frames_total: Mapped[int] = mapped_column(Integer, default=0)
    video_ms_done: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # The server process running it, and when it last said so: a job is another server's
    # while its heartbeat is fresh (see faceledger.service.video.claimable).
    runner: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    review_task_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class VideoResultRow(Base):
    """One result of a video job: a face detected at a time, or a person seen at a time with
    the collection's candidates for them."""

    __tablename__ = "video_results"
    __table_args__ = (Index("ix_video_results_job", "job_id", "timestamp_ms", "person_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(
        ForeignKey("video_jobs.job_id", ondelete="CASCADE"), index=True
    )
    timestamp_ms: Mapped[int] = mapped_column(Integer)
    person_index: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict] = mapped_column(JSON)  # box, confidence, quality, landmarks, matches


class LedgerEventRow(Base):
    __tablename__ = "ledger_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Copies of body fields for queries; `ledger verify` checks they agree with the body.
    time: Mapped[str] = mapped_column(String(40), index=True)
    operation: Mapped[str] = mapped_column(String(64), index=True)
    actor_key_id: Mapped[str] = mapped_column(String(64))
    collection_id: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)  # canonical JSON of the event: what is hashed
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The writer's Ed25519 signature over (seq, hash); NULL only in ledgers from before 0004.
    signature: Mapped[str | None] = mapped_column(String(128))


class FaceChangeRow(Base):
    """Every insert and delete of a face, in commit order, written by database triggers (so no
    code path can forget it): each process's vector index catches up from here before it
    answers, whichever process wrote the face."""

    __tablename__ = "face_changes"
    __table_args__: ClassVar[dict] = {"sqlite_autoincrement": True}

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(String(255))
    face_id: Mapped[str] = mapped_column(String(36))
    op: Mapped[str] = mapped_column(String(8))  # add | remove


class LedgerSignatureRow(Base):
    """Checkpoints: heads published outside the database (anchor file, witnesses)."""

    __tablename__ = "ledger_signatures"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    head_hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))  # hex Ed25519 signature
    public_key_id: Mapped[str] = mapped_column(String(16))
    signed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class RateBucketRow(Base):
    """A rate limit's token bucket, shared by every server on a PostgreSQL database."""

    __tablename__ = "rate_buckets"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch
