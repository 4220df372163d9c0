"""`faceledger db migrate-to`: move a SQLite installation onto PostgreSQL.

Every table is copied row for row, oldest rows first, in one PostgreSQL transaction: faces with
their descriptors (into pgvector's column), users, keys, policies, consent, review records,
video jobs, crops, and the ledger with each event's hash and signature as they were, so the
chain verifies unchanged against the same key and the anchored heads. The face change feed is
not copied: the target's own trigger writes one "add" per face as it arrives, which is what
every index then follows. While the copy runs the source is held under SQLite's write lock
(nothing written meanwhile can be lost) and is never changed; the copy is verified (row counts,
then the whole ledger) before the command says it is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import Session

from faceledger.config import Settings
from faceledger.errors import FaceledgerError, InvalidParameterError
from faceledger.governance.heads import read_heads
from faceledger.governance.ledger import Verification, verify
from faceledger.governance.signing import Signer
from faceledger.store.database import Database
from faceledger.store.schema import Base, FaceChangeRow

# Made by the target's own trigger (face_changes) or meaningless on another database.
NOT_COPIED = {FaceChangeRow.__tablename__, "rate_buckets"}
CHUNK = 2_000


@dataclass(frozen=True)
class Migration:
    rows: dict[str, int]  # table -> rows copied
    verification: Verification


def migrate_to(
    settings: Settings,
    target_url: str,
    progress: Callable[[str, int, int], None] = lambda table, done, total: None,
) -> Migration:
    """Copy the data directory's SQLite database into the empty PostgreSQL database at
    ``target_url`` and verify the copy. ``progress(table, rows done, rows in table)``."""
    source_url = settings.resolved_database_url
    if not source_url.startswith("sqlite"):
        raise InvalidParameterError(
            "migrate-to moves a SQLite installation; this data directory already uses "
            f"{source_url.split(':', 1)[0]}"
        )
    if not target_url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise InvalidParameterError("the target must be a postgresql:// URL")
    key_file = Path(settings.data_dir) / "keys" / "ledger-ed25519.pem"
    if not key_file.is_file():
        raise InvalidParameterError(f"no ledger key at {key_file}: is this a data directory?")
    source, target = Database(source_url), Database(target_url)
    try:
        source.migrate()  # the same schema revision on both sides
        target.migrate()
        tables = [t for t in Base.metadata.sorted_tables if t.name not in NOT_COPIED]
        with source.write() as reading, target.write() as writing:  # the source held still
            _require_empty(writing, tables)
            rows = {t.name: _copy(reading, writing, t, progress) for t in tables}
            _advance_sequences(writing, tables)
            for table in tables:
                copied = writing.scalar(select(func.count()).select_from(table))
                if copied != rows[table.name]:
                    raise FaceledgerError(  # rolled back: the target stays empty
                        f"{table.name}: {rows[table.name]} rows read but {copied} written",
                        code="MIGRATION_INCOMPLETE",
                    )
        anchor = settings.anchor_file
        heads = list(read_heads(anchor)) if anchor.exists() else []
        key = Signer.load_or_create(key_file).public_key
        with target.read() as session:
            verification = verify(session, key, heads)
        return Migration(rows, verification)
    finally:
        source.close()
        target.close()


def _require_empty(session: Session, tables: list[Table]) -> None:
    for table in tables:
        if session.execute(select(text("1")).select_from(table).limit(1)).first():
            raise InvalidParameterError(
                f"the target database is not empty ({table.name} has rows): migrate into a new "
                "database (createdb), never over another installation"
            )


def _copy(
    reading: Session, writing: Session, table: Table, progress: Callable[[str, int, int], None]
) -> int:
    total = reading.scalar(select(func.count()).select_from(table)) or 0
    order = [c for c in table.primary_key.columns]
    done = 0
    progress(table.name, 0, total)
    batch: list[dict] = []
    # ORM-typed columns (descriptors, timestamps, JSON) convert on the way out and in.
    for row in reading.execute(select(table).order_by(*order).execution_options(yield_per=CHUNK)):
        batch.append(dict(row._mapping))
        if len(batch) == CHUNK:
            writing.execute(insert(table), batch)
            done += len(batch)
            progress(table.name, done, total)
            batch = []
    if batch:
        writing.execute(insert(table), batch)
        done += len(batch)
    progress(table.name, done, total)
    return done


def _advance_sequences(session: Session, tables: list[Table]) -> None:
    """Rows came with their ids: each id sequence moves past them, or the next insert would
    collide with a copied row."""
    for table in tables:
        for column in table.primary_key.columns:
            sequence = session.scalar(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": table.name, "column": column.name},
            )
            if sequence:
                session.execute(
                    text(
                        f"SELECT setval(:sequence, (SELECT coalesce(max({column.name}), 0) + 1 "
                        f"FROM {table.name}), false)"
                    ),
                    {"sequence": sequence},
                )
