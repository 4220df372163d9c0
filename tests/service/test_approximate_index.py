"""The approximate index on real descriptors: it finds what exact search finds within the
thresholds the service uses, reports exact distances, never returns a deleted face, takes adds
while it builds, and a server on it finds a face indexed by another process at once."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from faceledger.config import Settings
from faceledger.evaluation import lfw
from faceledger.evaluation.embedder import Pipeline, embed_images
from faceledger.store.approximate import ApproximateIndex, ApproximateSettings
from faceledger.store.index import ExactIndex
from faceledger.vision import FaceEngine
from tests.conftest import LFW, require

K = 100
# 200 codes re-ranked out of 4,000 faces: a twentieth of the gallery, so what is found is found
# by the codes and not by re-ranking nearly everything (the service re-ranks 2,000 of 1 M).
SMALL = {"train_sample": 4000, "min_candidates": 200, "candidates": 2}


@pytest.fixture(scope="module")
def descriptors() -> tuple[np.ndarray, list[str]]:
    """Real SFace descriptors of 4,000 LFW photos (the embedding cache makes this quick)."""
    require(LFW / "images")
    root = lfw.resolve_lfw_dir()
    names = lfw.all_images(root)[:4000]
    run = embed_images(
        root / "images", names, Pipeline.for_model("sface"), cache_dir=Settings().cache_dir
    )
    kept = [n for n in names if run.results[n].vector is not None]
    return np.stack([run.results[n].vector for n in kept]).astype(np.float32), kept


@pytest.fixture(scope="module")
def limits() -> dict[int, float]:
    engine = FaceEngine.for_model("sface")
    return {s: engine.max_distance(float(s)) for s in (80, 99)}


def _both(vectors: np.ndarray, **settings: int) -> tuple[ExactIndex, ApproximateIndex]:
    exact = ExactIndex()
    approximate = ApproximateIndex(
        settings=ApproximateSettings(above=1000, **{**SMALL, **settings})
    )
    items = [(f"face-{i}", v) for i, v in enumerate(vectors)]
    exact.add(items)
    approximate.add(items)
    approximate.wait(120)
    assert approximate.approximate  # built in the background once past 1,000 faces
    return exact, approximate


@pytest.mark.parametrize("code_bytes", [64, 32])
def test_it_finds_what_exact_search_finds_with_exact_distances(
    descriptors, limits, code_bytes
) -> None:
    """Both code sizes: 64 bytes a face, and the 32 of very large collections (which fetch
    five times the candidates)."""
    vectors, _ = descriptors
    compact = {"compact_above": 1000, "compact_min_candidates": 1000} if code_bytes == 32 else {}
    exact, approximate = _both(vectors, **compact)
    assert approximate._codes is not None and approximate._codes.bytes_per_face == code_bytes
    found = total = 0
    for query in vectors[:300]:
        for limit in limits.values():
            truth = exact.search(query, K, limit)
            got = approximate.search(query, K, limit)
            distances = {n.face_id: n.distance for n in truth}
            for neighbor in got:  # every distance is the exact one
                assert neighbor.distance == pytest.approx(
                    distances.get(neighbor.face_id, -1), abs=1e-5
                )
            assert [n.distance for n in got] == sorted(n.distance for n in got)
            found += len({n.face_id for n in got} & set(distances))
            total += len(truth)
    assert total > 300 and found / total >= 0.99


def test_deleted_faces_are_never_returned_and_new_ones_are_found_at_once(descriptors, limits):
    vectors, _ = descriptors
    _, approximate = _both(vectors[:3000])
    query = vectors[0]
    nearest = approximate.search(query, 5, limits[80])
    assert nearest[0].face_id == "face-0"
    approximate.remove(["face-0"])
    assert "face-0" not in {n.face_id for n in approximate.search(query, K, limits[80])}
    approximate.add([("again", query)])  # added after the codes were built
    assert approximate.search(query, 1, limits[99])[0].face_id == "again"


def _each_finds_itself(index: ApproximateIndex, faces: dict[str, np.ndarray]) -> None:
    """Every face held is the nearest to its own descriptor, at distance 0, and the index
    holds no other: what fails if a code's row in the exact descriptors went stale."""
    assert len(index) == len(faces)
    for face_id, vector in faces.items():
        nearest = index.search(vector, 1, 0.01)
        assert [n.face_id for n in nearest] == [face_id]
        assert nearest[0].distance == pytest.approx(0.0, abs=1e-3)


def test_rows_stay_right_through_deletes_and_replacements(descriptors) -> None:
    """Deleting a face moves the exact index's last row into its hole; the codes re-rank by
    row, so every move must reach them: deletes from the middle and the end, a face deleted
    after it moved, faces replaced with another descriptor, before and after a rebuild."""
    vectors, _ = descriptors
    index = ApproximateIndex(settings=ApproximateSettings(above=10**9, **SMALL))
    faces = {f"face-{i}": vectors[i] for i in range(3000)}
    index.add(faces.items())
    index.build()
    rng = np.random.default_rng(1)
    for round_ in range(3):
        gone = [f"face-{i}" for i in rng.choice(3000, 300, replace=False)]
        gone += [f"face-{2999 - round_}", f"face-{2998 - round_}"]  # the rows that moved first
        index.remove(gone)
        for face_id in gone:
            faces.pop(face_id, None)
        replaced = list(faces)[round_ * 50 : round_ * 50 + 50]
        index.add((f, vectors[3000 + round_ * 50 + n]) for n, f in enumerate(replaced))
        faces.update((f, vectors[3000 + round_ * 50 + n]) for n, f in enumerate(replaced))
        _each_finds_itself(index, faces)
    index.add([("twice", vectors[3900]), ("twice", vectors[3901])])  # the later one holds
    faces["twice"] = vectors[3901]
    _each_finds_itself(index, faces)
    index.build()  # rebuilt from the exact rows as they are now
    _each_finds_itself(index, faces)


def test_searches_and_adds_go_on_while_the_codes_are_built(descriptors, limits) -> None:
    vectors, _ = descriptors
    index = ApproximateIndex(settings=ApproximateSettings(above=10**9, **SMALL))
    index.add((f"face-{i}", v) for i, v in enumerate(vectors[:3000]))
    builder = threading.Thread(target=index.build)
    builder.start()
    answered = 0
    for i, v in enumerate(vectors[3000:3500]):  # while building: added, deleted, searched
        index.add([(f"late-{i}", v)])
        if i % 2:
            index.remove([f"late-{i}"])
        hits = index.search(v, 1, limits[99])
        assert (hits and hits[0].face_id == f"late-{i}") or i % 2
        answered += 1
    builder.join(120)
    assert index.approximate and answered == 500
    for i, v in enumerate(vectors[3000:3500]):  # the changes made meanwhile were replayed
        ids = {n.face_id for n in index.search(v, 3, limits[99])}
        assert (f"late-{i}" in ids) is (i % 2 == 0)
    faces = {f"face-{i}": v for i, v in enumerate(vectors[:3000])}
    faces.update((f"late-{i}", v) for i, v in enumerate(vectors[3000:3500]) if i % 2 == 0)
    _each_finds_itself(index, faces)  # rows moved by the deletes meanwhile reached the codes


def test_a_server_restarts_from_its_saved_index_only_when_it_is_in_step(tmp_path, descriptors):
    """Saved at close, loaded (and deleted) at the next start; a face indexed and one deleted
    while no server ran are replayed from the feed; an erasure deletes the saved file."""
    from faceledger.service import collections, erasure
    from faceledger.service.auth import Actor, Role
    from faceledger.service.common import Request
    from faceledger.service.context import Services
    from faceledger.store.schema import FaceRow

    vectors, _ = descriptors
    settings = Settings(data_dir=tmp_path, approximate_above=1000)
    local = Request(Actor("test", Role.LOCAL), purpose="test")

    def put(services: Services, ids: range, collection: str = "big") -> None:
        with services.db.write() as session:
            session.add_all(
                FaceRow(
                    face_id=f"f{i}",
                    collection_id=collection,
                    external_image_id=f"person-{i}",
                    image_id="0" * 64,
                    box={},
                    landmarks=[],
                    quality={},
                    confidence=0.0,
                    embedding=vectors[i].tobytes(),
                    created_by="test",
                )
                for i in ids
            )

    server = Services.open(settings, saved_index=True)
    collections.create_collection(server, local, "big")
    put(server, range(2000))
    assert len(server.indexes.current("big")) == 2000
    server.close()
    assert (tmp_path / "index" / "meta.json").is_file()

    cli = Services.open(settings)  # another process while no server runs
    put(cli, range(2000, 2100))
    cli.close()
    assert (tmp_path / "index" / "meta.json").is_file()  # adding leaves it

    server = Services.open(settings, saved_index=True)
    assert server.indexes.rebuilds == 0  # loaded, not rebuilt
    assert not (tmp_path / "index").exists()  # and no longer on disk
    index = server.indexes.current("big")
    assert len(index) == 2100 and index.search(vectors[2050], 1, 0.1)[0].face_id == "f2050"
    server.close()

    cli = Services.open(settings)
    erasure.erase_subject(cli, local, external_image_id="person-7")
    assert not (tmp_path / "index").exists()  # the erased face's descriptor left the disk
    cli.close()
    server = Services.open(settings, saved_index=True)
    assert server.indexes.rebuilds == 1
    assert "f7" not in {n.face_id for n in server.indexes.current("big").search(vectors[7], 5, 2.0)}
    server.close()
