"""The running service's parts, built once: database, engine, indexes, ledger.

Interfaces (API, CLI) build one :class:`Services` and call the use-case modules with it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from faceledger.config import Settings
from faceledger.governance.ledger import Ledger
from faceledger.governance.secrets import SecretBox
from faceledger.governance.signing import Signer
from faceledger.store.database import Database
from faceledger.store.index import IndexSet
from faceledger.store.schema import FaceRow
from faceledger.vision import FaceEngine

FACE_MODEL_VERSION = "dlib-resnet128-flip/1.0"


@dataclass
class Services:
    settings: Settings
    db: Database
    engine: FaceEngine
    indexes: IndexSet
    ledger: Ledger
    secrets: SecretBox
    # Database write + index update happen together, so the index never holds a face the
    # database lost (or the reverse) when writers race.
    write_lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def open(cls, settings: Settings, engine: FaceEngine | None = None) -> Services:
        data_dir = Path(settings.data_dir)
        # Private from the start: the database holds face descriptors.
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = Database(settings.resolved_database_url)
        db.migrate()
        signer = Signer.load_or_create(data_dir / "keys" / "ledger-ed25519.pem")
        secrets = SecretBox.load_or_create(data_dir / "keys" / "secrets.key")
        services = cls(
            settings=settings,
            db=db,
            engine=engine or FaceEngine(cnn_fallback=settings.cnn_fallback),
            indexes=IndexSet(),
            ledger=Ledger(signer),
            secrets=secrets,
        )
        services.rebuild_indexes()
        return services

    def rebuild_indexes(self) -> None:
        """Load every stored descriptor into the per-collection indexes."""
        self.indexes = IndexSet()
        with self.db.read() as session:
            rows = session.execute(
                select(FaceRow.collection_id, FaceRow.face_id, FaceRow.embedding).execution_options(
                    yield_per=10_000
                )
            )
            for collection_id, face_id, blob in rows:
                self.indexes.get(collection_id).add(
                    [(face_id, np.frombuffer(blob, dtype=np.float32))]
                )

    def close(self) -> None:
        """Sign the ledger head, then release the database."""
        with self.write_lock, self.db.write() as session:
            self.ledger.sign_head(session)
        self.db.close()
