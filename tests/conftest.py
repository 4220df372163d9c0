from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from faceledger.config import get_settings

DATA = get_settings().eval_data
SAMPLES = DATA / "samples" / "face_recognition"
EXAMPLES = SAMPLES / "examples"
DLIB_FACES = DATA / "samples" / "dlib" / "faces"
LFW = DATA / "lfw"

# The Ray clusters the tests start require a token (token authentication), and Ray remembers the
# first token a process reads: one for the whole run, in the environment every cluster, client
# and child process sees, so no test depends on a token left in ~/.ray by an earlier run.
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))


def require(path: Path) -> Path:
    """Skip the test, saying why, when evaluation data is absent."""
    if not path.exists():
        pytest.skip(
            f"evaluation data not found at {path} (set FACELEDGER_EVAL_DATA to the shared "
            "data folder; see ../shared/data/README.md)"
        )
    return path


@pytest.fixture(scope="module")
def database() -> str:
    """SQLite, the default; the suites that run on both databases override this
    (tests/databases.py)."""
    return "sqlite"


@pytest.fixture(scope="session")
def postgresql_server(tmp_path_factory):
    """A real PostgreSQL with pgvector for this session (see tests/databases.py)."""
    from tests.databases import start_postgresql

    server = start_postgresql(tmp_path_factory.mktemp("postgresql"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def engine():
    from faceledger.vision import FaceEngine

    return FaceEngine()


@pytest.fixture(scope="session")
def obama_bytes() -> bytes:
    return require(EXAMPLES / "obama.jpg").read_bytes()


@pytest.fixture(scope="session")
def lfw_cache(tmp_path_factory):
    """One embedding cache for every test that runs LFW in this session (fresh each run)."""
    from faceledger.config import get_settings

    cache = tmp_path_factory.mktemp("embedding-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACELEDGER_CACHE_DIR", str(cache))
        get_settings.cache_clear()
        yield cache
    get_settings.cache_clear()
