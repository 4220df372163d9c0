"""Hardening: each ledger event signed by its writer; a change feed of faces for every index

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    """CREATE TRIGGER faces_change_add AFTER INSERT ON faces BEGIN
         INSERT INTO face_changes (collection_id, face_id, op)
         VALUES (NEW.collection_id, NEW.face_id, 'add'); END""",
    """CREATE TRIGGER faces_change_remove AFTER DELETE ON faces BEGIN
         INSERT INTO face_changes (collection_id, face_id, op)
         VALUES (OLD.collection_id, OLD.face_id, 'remove'); END""",
]
POSTGRES_TRIGGERS = [
    """CREATE FUNCTION faces_change() RETURNS trigger AS $$
       BEGIN
         IF TG_OP = 'INSERT' THEN
           INSERT INTO face_changes (collection_id, face_id, op)
           VALUES (NEW.collection_id, NEW.face_id, 'add');
         ELSE
           INSERT INTO face_changes (collection_id, face_id, op)
           VALUES (OLD.collection_id, OLD.face_id, 'remove');
         END IF;
         RETURN NULL;
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER faces_change AFTER INSERT OR DELETE ON faces
       FOR EACH ROW EXECUTE FUNCTION faces_change()""",
]


def upgrade() -> None:
    op.add_column("ledger_events", sa.Column("signature", sa.String(length=128), nullable=True))
    op.create_table(
        "face_changes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("collection_id", sa.String(length=255), nullable=False),
        sa.Column("face_id", sa.String(length=36), nullable=False),
        sa.Column("op", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sqlite_autoincrement=True,  # seqs are never reused, even after the newest is pruned
    )
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRES_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER faces_change_add")
        op.execute("DROP TRIGGER faces_change_remove")
    else:
        op.execute("DROP TRIGGER faces_change ON faces")
        op.execute("DROP FUNCTION faces_change()")
    op.drop_table("face_changes")
    op.drop_column("ledger_events", "signature")
