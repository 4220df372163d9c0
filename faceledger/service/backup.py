"""Backups of a data directory that a running server keeps writing to, and their restore.

A backup is a folder: the SQLite database copied with SQLite's online backup API (a
consistent snapshot while the server writes), the key files (the ledger's signing key, the key
sealing AWS secrets), the anchor file of signed ledger heads, and ``MANIFEST.json`` with each
file's SHA-256 and the ledger's newest event. The anchor file is copied *before* the database,
so every head it holds is in the copied chain and the restored ledger verifies.

Restoring checks every checksum first, never overwrites a data directory silently (with
``force`` the files it replaces are moved aside, not deleted), then opens the restored
directory, verifies the whole ledger against its key and anchored heads, and records the
restore on the ledger. Both are on the ledger: a copy of everyone's face descriptors is a use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceledger import __version__
from faceledger.config import Settings
from faceledger.errors import FaceledgerError, InputNotFoundError, InvalidParameterError
from faceledger.governance.ledger import Verification
from faceledger.service.common import Request
from faceledger.service.context import Services
from faceledger.service.keys import ADMIN_KEY_FILE
from faceledger.service.ledger import verify_ledger

MANIFEST = "MANIFEST.json"
DATABASE = "faceledger.db"
# Beside the database, relative to the data directory: what a restore needs besides it (the
# first start's admin key file too, where it was kept).
KEY_FILES = ("keys/ledger-ed25519.pem", "keys/secrets.key", "ledger/heads.jsonl", ADMIN_KEY_FILE)
REPLACED = (DATABASE, "keys", "ledger", ADMIN_KEY_FILE)


class BackupError(FaceledgerError):
    """The backup cannot be made, or a backup cannot be restored (damaged, or in the way)."""

    code = "BACKUP_FAILED"


@dataclass(frozen=True)
class BackupReport:
    path: Path
    files: dict[str, int]  # relative path -> bytes
    ledger_events: int
    ledger_head: str | None


@dataclass(frozen=True)
class RestoreReport:
    data_dir: Path
    moved_aside: Path | None
    verification: Verification


def backup(services: Services, request: Request, destination: Path) -> BackupReport:
    """Copy the data directory to ``destination`` (a new or empty folder) while it is in use."""
    request.actor.require("keys:manage")
    source = _sqlite_path(services.settings)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise InvalidParameterError(f"{destination} exists and is not an empty folder")
    data_dir = Path(services.settings.data_dir)
    with services.write_lock, services.db.write() as session:
        services.ledger.append(
            session, request.event("Backup", parameters={"destination": str(destination)[:500]})
        )
    destination.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(destination, 0o700)
    for name in KEY_FILES:  # heads before the database: see the module's docstring
        if (data_dir / name).exists():
            _copy_private(data_dir / name, destination / name)
    _snapshot(source, destination / DATABASE)
    files = {
        str(p.relative_to(destination)): p.stat().st_size
        for p in sorted(destination.rglob("*"))
        if p.is_file()
    }
    events, head = _newest_event(destination / DATABASE)
    manifest = {
        "format": 1,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "faceledger_version": __version__,
        "ledger": {"events": events, "head_hash": head},
        "files": {name: _sha256(destination / name) for name in files},
    }
    _write_private(destination / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return BackupReport(destination, files, events, head)


def restore(
    settings: Settings, backup_dir: Path, request: Request, *, force: bool = False
) -> RestoreReport:
    """Restore ``backup_dir`` into ``settings.data_dir``; stop the server on it first."""
    request.actor.require("keys:manage")
    _sqlite_path(settings)
    manifest = read_manifest(backup_dir)
    for name, digest in manifest["files"].items():
        if _sha256(backup_dir / name) != digest:
            raise BackupError(f"the backup is damaged: {name} does not match its checksum")
    target = Path(settings.data_dir)
    in_the_way = [p for p in REPLACED if (target / p).exists()]
    moved_aside = None
    if in_the_way:
        if not force:
            raise BackupError(
                f"{target} already holds a data directory ({', '.join(in_the_way)}); stop its "
                "server and pass --force to replace it (its files are moved aside, not deleted)"
            )
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        moved_aside = target / f"replaced-{stamp}"
        moved_aside.mkdir(mode=0o700)
        for entry in target.iterdir():
            if entry.name.startswith(DATABASE) or entry.name in REPLACED:
                entry.rename(moved_aside / entry.name)
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in manifest["files"]:
        _copy_private(backup_dir / name, target / name)
    services = Services.open(settings)
    services.forget_saved_index()  # saved for the database this one replaces
    try:
        verification = verify_ledger(services, request)
        if not verification.ok:  # the files stay for inspection; nothing is appended
            return RestoreReport(target, moved_aside, verification)
        with services.write_lock, services.db.write() as session:
            services.ledger.append(
                session,
                request.event(
                    "RestoreFromBackup",
                    parameters={
                        "backup": str(backup_dir)[:500],
                        "backup_created_at": manifest.get("created_at"),
                        "ledger_verified": verification.ok,
                    },
                ),
            )
    finally:
        services.close()
    return RestoreReport(target, moved_aside, verification)


def read_manifest(backup_dir: Path) -> dict[str, Any]:
    path = backup_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputNotFoundError(
            f"{backup_dir} is not a faceledger backup (no {MANIFEST})"
        ) from None
    except (OSError, ValueError) as error:
        raise BackupError(f"{path} cannot be read: {error}") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or DATABASE not in files:
        raise BackupError(f"{path} does not describe a faceledger backup")
    for name in files:
        resolved = (backup_dir / name).resolve()
        if not resolved.is_relative_to(backup_dir.resolve()) or name.startswith("/"):
            raise BackupError(f"{path} names a file outside the backup: {name!r}")
    return manifest


def _sqlite_path(settings: Settings) -> Path:
    url = settings.resolved_database_url
    if not url.startswith("sqlite:///"):
        raise InvalidParameterError(
            "backup and restore cover SQLite data directories; back up PostgreSQL with "
            "pg_dump, plus the data directory's keys/ and ledger/ folders"
        )
    return Path(url.removeprefix("sqlite:///"))


def _snapshot(source: Path, target: Path) -> None:
    """SQLite's online backup: one consistent snapshot, whatever other connections write."""
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    reading, writing = sqlite3.connect(source, timeout=60), sqlite3.connect(target)
    try:
        reading.backup(writing)
        writing.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        writing.close()
        reading.close()


def _newest_event(database: Path) -> tuple[int, str | None]:
    connection = sqlite3.connect(database)
    try:
        row = connection.execute(
            "SELECT seq, hash FROM ledger_events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    finally:
        connection.close()
    return (int(row[0]), str(row[1])) if row else (0, None)


def _copy_private(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with source.open("rb") as reading:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as writing:
            shutil.copyfileobj(reading, writing)
            writing.flush()
            os.fsync(writing.fileno())


def _write_private(target: Path, text: str) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise BackupError(f"the backup is incomplete: {path.name} is missing") from None
    return digest.hexdigest()
