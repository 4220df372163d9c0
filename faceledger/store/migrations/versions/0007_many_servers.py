"""Many servers on one database: descriptors in a pgvector ``vector(128)`` column on
PostgreSQL (SQLite keeps its BLOB), video jobs held by the server running them, rate limits
shared by every server

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("video_jobs") as batch:
        batch.add_column(sa.Column("runner", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "rate_buckets",
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "subject"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
        # No PostgreSQL installation predates this revision, so the table is empty here; an
        # existing SQLite installation moves with `faceledger db migrate-to`.
        op.execute("ALTER TABLE faces ALTER COLUMN embedding TYPE vector(128) USING NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE faces ALTER COLUMN embedding TYPE bytea USING NULL")
    op.drop_table("rate_buckets")
    with op.batch_alter_table("video_jobs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("runner")
