"""The running service's parts, built once: database, engine, indexes, ledger.

Interfaces (API, CLI) build one :class:`Services` and call the use-case modules with it.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from faceledger.config import Settings
from faceledger.delivery import Courier
from faceledger.governance.heads import AnchorFile, Witnesses
from faceledger.governance.ledger import Event, Ledger
from faceledger.governance.secrets import SecretBox
from faceledger.governance.signing import Signer
from faceledger.service.gate import EngineGate
from faceledger.service.refusals import RefusalLog
from faceledger.store import snapshot
from faceledger.store.approximate import ApproximateSettings
from faceledger.store.buckets import TokenBuckets, token_buckets
from faceledger.store.database import Database
from faceledger.store.feed import FollowingIndexes
from faceledger.vision import FaceEngine
from faceledger.vision.models import face_model

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    db: Database
    # One engine per face model, made on first use (see :meth:`engine_for`).
    engines: dict[str, FaceEngine]
    indexes: FollowingIndexes
    ledger: Ledger
    secrets: SecretBox
    crops: SecretBox  # face crops kept for review: a key of their own
    gate: EngineGate
    refusals: RefusalLog = field(init=False)
    courier: Courier = field(init=False)  # webhooks (job completions)
    # Called at close by parts started later (the video job pool), newest first.
    closers: list[Callable[[], None]] = field(init=False, default_factory=list)
    # Parts that use cases start on first use and keep for this Services' life (the video
    # job pool, the live watches), by name; see :meth:`part`.
    parts: dict[str, Any] = field(init=False, default_factory=dict)
    parts_lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    # Making an engine takes seconds: other parts are not held up meanwhile.
    engines_lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    # Serialises this process's writers before the database does (SQLite's BEGIN IMMEDIATE
    # does it across processes), so threads queue here instead of on a busy timeout.
    write_lock: threading.RLock = field(default_factory=threading.RLock)

    # Who this process is to other servers on the database (video jobs it runs are its own):
    # host, process id and a nonce, as "host:pid:nonce".
    runner_id: str = field(
        init=False,
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}",
    )
    # Set on the server's Services: it loads the saved index at start and saves it at close.
    saves_index: bool = field(init=False, default=False)

    @classmethod
    def open(
        cls, settings: Settings, engine: FaceEngine | None = None, *, saved_index: bool = False
    ) -> Services:
        """``engine``: an engine already built, used for its own face model (tests share one);
        the engines of other models are made when first needed. ``saved_index``: start from
        the index saved beside the database when it is in step (a server does; the CLI does
        not), and save it at close."""
        data_dir = Path(settings.data_dir)
        # Private from the start: the database holds face descriptors.
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = Database(settings.resolved_database_url)
        db.migrate()
        signer = Signer.load_or_create(data_dir / "keys" / "ledger-ed25519.pem")
        secrets = SecretBox.load_or_create(data_dir / "keys" / "secrets.key")
        crops = SecretBox.load_or_create(data_dir / "keys" / "crops.key")
        anchor = AnchorFile(settings.anchor_file)
        ledger = Ledger(signer, anchor=anchor, witnesses=Witnesses(settings.witness_urls))
        # A writer never extends a chain that lost a head already published outside it.
        ledger.expect(anchor.last())
        approximate = (
            ApproximateSettings(above=settings.approximate_above)
            if settings.approximate_above
            else None
        )
        indexes = FollowingIndexes(db, approximate=approximate)
        if not (saved_index and snapshot.load(indexes, data_dir / "index")):
            indexes.rebuild()
        services = cls(
            settings=settings,
            db=db,
            engines={engine.model_version: engine} if engine is not None else {},
            indexes=indexes,
            ledger=ledger,
            secrets=secrets,
            crops=crops,
            gate=EngineGate(settings.engine_concurrency, settings.engine_queue),
        )
        services.saves_index = saved_index
        # The default model's engine is made now, so the first request does not wait for it.
        services.engine_for(services.default_model)
        return services

    def __post_init__(self) -> None:
        self.refusals = RefusalLog(self._append_events)
        self.courier = Courier()

    def _append_events(self, events: list[Event]) -> None:
        with self.write_lock, self.db.write() as session:
            for event in events:
                self.ledger.append(session, event)

    @property
    def default_model(self) -> str:
        """The face model version new collections get (``FACELEDGER_FACE_MODEL``)."""
        return face_model(self.settings.face_model).version

    def model_version(self, name: str | None) -> str:
        """The version of the face model called ``name`` (``sface``, ``dlib`` or a version);
        the default model's when None."""
        return face_model(name).version if name else self.default_model

    @property
    def engine(self) -> FaceEngine:
        """The default face model's engine: compare, detect, evaluation, new collections."""
        return self.engine_for(self.default_model)

    def engine_for(self, model_version: str) -> FaceEngine:
        """The engine of a face model (a collection's), made the first time it is needed;
        detection is configured the same for every model."""
        engine = self.engines.get(model_version)
        if engine is not None:  # the common case: no lock on every request
            return engine
        with self.engines_lock:
            engine = self.engines.get(model_version)
            if engine is None:
                engine = self.engines[model_version] = FaceEngine.for_model(
                    model_version,
                    detector=self.settings.detector,
                    min_face_px=self.settings.min_face_px,
                    cnn_fallback=self.settings.cnn_fallback,
                )
            return engine

    @property
    def index_folder(self) -> Path:
        return Path(self.settings.data_dir) / "index"

    def forget_saved_index(self) -> None:
        """Delete the saved index, if one is on disk: called by whatever deletes faces, so no
        deleted face's descriptor stays in a file (a running server holds none on disk)."""
        snapshot.discard(self.index_folder)

    def part(self, name: str, make: Callable[[], T]) -> T:
        """The part called ``name``, made by ``make`` the first time it is asked for."""
        with self.parts_lock:
            if name not in self.parts:
                self.parts[name] = make()
            return self.parts[name]

    def buckets(self, scope: str, rate: float, burst: float) -> TokenBuckets:
        """The rate limit called ``scope``: its token buckets, shared by every server process
        on a PostgreSQL database."""
        return self.part(f"buckets:{scope}", lambda: token_buckets(self.db, scope, rate, burst))

    def close(self) -> None:
        """Write aggregated refusals, deliver pending heads to witnesses, then release the
        database. Nothing is signed here but those events: only a writer that has just extended
        the chain signs."""
        for close in reversed(self.closers):
            close()
        if self.saves_index:
            snapshot.save(self.indexes, self.index_folder)
        self.refusals.flush(everything=True)
        self.ledger.close()
        self.courier.flush()
        self.db.close()
