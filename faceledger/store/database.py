"""Connections, transactions and migrations.

SQLite runs in WAL mode with foreign keys on. Write transactions on SQLite start with
``BEGIN IMMEDIATE``, so two writers (two threads, or the server and the CLI on one data
directory) queue for the lock instead of failing half-way; that also keeps the ledger's hash
chain linear.

PostgreSQL (``postgresql://...``, with pgvector) gives every write transaction the same
property by taking one transaction-scoped advisory lock first: writes from every server on the
database queue for it, so the ledger stays one chain, and the face change feed's sequence
numbers become visible in the order they were given out (a reader that has seen change *n*
never later finds an uncommitted *n-1* appearing). Reads never wait for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from faceledger.errors import ConfigurationError

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock keys: any two numbers no other program on the database uses.
WRITE_LOCK = 0x46_4C_45_44  # "FLED"
MIGRATION_LOCK = WRITE_LOCK + 1


def engine_url(url: str) -> str:
    """The SQLAlchemy URL for a setting: ``postgresql://`` means the psycopg 3 driver."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("sqlite:", "postgresql+psycopg:")):
        return url
    raise ConfigurationError(
        f"unsupported database URL {url.split(':', 1)[0]!r}: use sqlite:///PATH or "
        "postgresql://USER@HOST/DATABASE"
    )


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.is_postgresql = not self.is_sqlite
        if self.is_postgresql:
            _require_postgresql_driver()
        connect_args = {"check_same_thread": False, "timeout": 60} if self.is_sqlite else {}
        self.engine: Engine = create_engine(
            engine_url(url), connect_args=connect_args, pool_pre_ping=True
        )
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        writer_engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE")
            if self.is_sqlite
            else self.engine
        )
        self._writer = sessionmaker(writer_engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            if self.is_postgresql:  # servers starting together migrate one after the other
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session:
            yield session

    @contextmanager
    def write(self, *, serialised: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.
        ``serialised=False`` (PostgreSQL): skip the write lock, for a transaction that touches
        only rows it locks itself and neither the ledger nor faces."""
        with self._writer() as session, session.begin():
            if self.is_postgresql and serialised:
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK})
            yield session

    def seconds_now(self, session: Session) -> float:
        """The database server's clock, in seconds since the epoch: one clock for every server
        process that shares the database."""
        if self.is_sqlite:
            return time.time()
        return float(session.scalar(text("SELECT extract(epoch FROM clock_timestamp())")))

    def close(self) -> None:
        self.engine.dispose()


def _require_postgresql_driver() -> None:
    try:
        import pgvector  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as error:
        raise ConfigurationError(
            "a postgresql:// database needs the driver: pip install 'faceledger[postgresql]'"
        ) from error


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "foreign_keys=ON",
            "busy_timeout=60000",
            # FULL: a commit is on disk before it is acknowledged, so an acknowledged face or
            # ledger event survives a power cut, not only a crash of the process.
            "synchronous=FULL",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")
