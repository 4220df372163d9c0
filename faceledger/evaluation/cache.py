"""Embeddings cached by image hash and pipeline fingerprint, so a second run is quick.

One SQLite file; only the parent process writes, so workers never contend for it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    image_sha256 TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    method TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (image_sha256, pipeline)
)
"""


class EmbeddingCache:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "embeddings.sqlite"
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def get_many(self, hashes: list[str], pipeline: str) -> dict[str, tuple[str, np.ndarray]]:
        found: dict[str, tuple[str, np.ndarray]] = {}
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT image_sha256, method, vector FROM embeddings "
                f"WHERE pipeline = ? AND image_sha256 IN ({marks})",
                [pipeline, *chunk],
            )
            for sha, method, blob in rows:
                found[sha] = (method, np.frombuffer(blob, dtype=np.float32).copy())
        return found

    def put_many(self, rows: list[tuple[str, str, str, np.ndarray]]) -> None:
        """Rows of (image sha256, pipeline, method, vector)."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)",
                [(s, p, m, np.asarray(v, dtype=np.float32).tobytes()) for s, p, m, v in rows],
            )

    def close(self) -> None:
        self._db.close()
