"""The indexes saved beside the database, so a restart at millions of faces does not read every
descriptor back out of it.

A server writes the snapshot when it stops and deletes it once it has loaded it at start: the
file exists only while no server runs, and any process that deletes faces meanwhile deletes it
too (:func:`discard`), so an erased face's descriptor never outlives its erasure on disk. A
snapshot is used only when it is provably in step: the face change feed still holds every
change after the one it covers (those are replayed), and after replaying, every collection
holds as many faces as the database says; otherwise the indexes are rebuilt from the database.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from faceledger.store.approximate import ApproximateIndex
from faceledger.store.feed import FollowingIndexes
from faceledger.store.schema import FaceChangeRow, FaceRow

FORMAT = 1
log = logging.getLogger("faceledger.index")


@contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """One process at a time saves or loads (the workers of `serve --workers N` share it)."""
    folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(folder.with_name(folder.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def save(indexes: FollowingIndexes, folder: Path) -> None:
    """Write every collection's faces and descriptors (and built codes) to ``folder``,
    replacing what is there; caught up with the database first."""
    with _exclusive(folder):
        _save(indexes, folder)


def _save(indexes: FollowingIndexes, folder: Path) -> None:
    indexes.catch_up()
    temporary = folder.with_name(folder.name + ".partial")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True, mode=0o700)
    collections = []
    with indexes.frozen() as (applied, items):
        for number, (collection_id, index) in enumerate(items):
            exact = index.exact if isinstance(index, ApproximateIndex) else index
            ids, vectors = exact.snapshot()
            (temporary / f"{number}.ids.json").write_text(json.dumps(ids))
            np.save(temporary / f"{number}.npy", vectors)
            collections.append({"collection_id": collection_id, "faces": len(ids)})
    meta = {
        "format": FORMAT,
        "applied": applied,
        "change": _change(indexes, applied),
        "collections": collections,
    }
    (temporary / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(temporary, folder)


def load(indexes: FollowingIndexes, folder: Path) -> bool:
    """Fill ``indexes`` from the snapshot in ``folder`` when it is in step with the database,
    then delete it; False (and the indexes untouched) when there is none or it is not."""
    with _exclusive(folder):
        return _load(indexes, folder)


def _load(indexes: FollowingIndexes, folder: Path) -> bool:
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        return False
    try:
        meta = json.loads(meta_file.read_text())
        applied = int(meta["applied"])
        if (
            meta.get("format") != FORMAT
            or not _feed_covers(indexes, applied)
            or _change(indexes, applied) not in (meta.get("change"), None)
        ):
            log.warning("the saved index is not in step with the database; rebuilding")
            return False
        loaded = [
            (
                entry["collection_id"],
                json.loads((folder / f"{number}.ids.json").read_text()),
                np.load(folder / f"{number}.npy"),
            )
            for number, entry in enumerate(meta["collections"])
        ]
        indexes.restore(int(meta["applied"]), loaded)
        indexes.catch_up()
        if not _counts_agree(indexes):
            log.warning("the saved index disagrees with the database after replay; rebuilding")
            indexes.rebuild()
        return True
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("the saved index cannot be read (%s); rebuilding", error)
        return False
    finally:
        discard(folder)


def discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _change(indexes: FollowingIndexes, seq: int) -> list[str] | None:
    """The change at ``seq`` as the feed holds it (None when pruned): a snapshot names the last
    change it covers, so a database with another history is told apart."""
    with indexes.db.read() as session:
        row = session.get(FaceChangeRow, seq)
    return [row.collection_id, row.face_id, row.op] if row is not None else None


def _feed_covers(indexes: FollowingIndexes, applied: int) -> bool:
    with indexes.db.read() as session:
        newest = session.scalar(select(func.max(FaceChangeRow.seq))) or 0
        oldest = session.scalar(select(func.min(FaceChangeRow.seq))) or 0
    # Behind the database by what the feed still holds, and never ahead of it (a database
    # restored from an older backup has a shorter feed).
    return applied <= newest and (oldest <= applied + 1 or newest == applied)


def _counts_agree(indexes: FollowingIndexes) -> bool:
    with indexes.db.read() as session:
        counts = dict(
            session.execute(
                select(FaceRow.collection_id, func.count()).group_by(FaceRow.collection_id)
            ).all()
        )
    held = {c: len(index) for c, index in indexes.collections() if len(index)}
    return held == {c: n for c, n in counts.items() if n}
