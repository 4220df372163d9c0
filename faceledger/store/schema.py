"""The database schema (SQLAlchemy 2). Portable between SQLite and PostgreSQL.

Images are never stored: a face row keeps the SHA-256 of the image it came from, its box,
landmarks, quality and descriptor. Alembic migrations in ``migrations/`` create these tables;
change both together.
"""

from __future__ import annotations

import datetime as dt

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


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class CollectionRow(Base):
    __tablename__ = "collections"

    collection_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    face_model_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))


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
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian
    user_id: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("collection_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.collection_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


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
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


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


class LedgerSignatureRow(Base):
    __tablename__ = "ledger_signatures"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    head_hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))  # hex Ed25519 signature
    public_key_id: Mapped[str] = mapped_column(String(16))
    signed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
