"""AWS credentials on API keys: encrypted secret and default purpose

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("aws_secret_encrypted", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("default_purpose", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("default_purpose")
        batch.drop_column("aws_secret_encrypted")
