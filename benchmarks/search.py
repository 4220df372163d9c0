"""Exact search latency and index throughput, printed as a table.

    python benchmarks/search.py [--sizes 10000,100000,1000000] [--queries 200]

Queries are real LFW descriptors. LFW has 13,233 faces, so larger galleries are filled with
vectors drawn from a normal distribution fitted to real descriptors (mean and covariance):
exact search costs the same whatever the values, and the fit keeps the distances realistic.
The service rows run the whole use case: decode, detect, embed, database, ledger.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from faceledger.config import Settings
from faceledger.evaluation import lfw
from faceledger.evaluation.embedder import Pipeline, embed_images
from faceledger.service import collections, consent, faces
from faceledger.service.auth import Actor, Role
from faceledger.service.common import Request, max_distance_for
from faceledger.service.context import Services
from faceledger.store.index import ExactIndex
from faceledger.store.schema import FaceRow

# Filler faces come from no image; they get a box so that a match on them reads like any other.
PLACEHOLDER_BOX = {
    "left": 0,
    "top": 0,
    "width": 1,
    "height": 1,
    "image_width": 1,
    "image_height": 1,
}


def percentiles(samples: list[float]) -> tuple[float, float]:
    values = np.array(samples) * 1000.0
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def real_descriptors(count: int) -> tuple[np.ndarray, list[Path]]:
    root = lfw.resolve_lfw_dir()
    names = lfw.all_images(root)[:count]
    run = embed_images(
        root / "images", names, Pipeline(), cache_dir=Settings().cache_dir, workers=2
    )
    vectors = np.stack([run.results[n].vector for n in names]).astype(np.float32)
    return vectors, [root / "images" / n for n in names]


def synthetic(real: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    mean = real.mean(axis=0)
    cov = np.cov(real, rowvar=False)
    return rng.multivariate_normal(mean, cov, size=count, method="cholesky").astype(np.float32)


def bench_index(real: np.ndarray, sizes: list[int], queries: int) -> None:
    rng = np.random.default_rng(0)
    probes = real[:queries]
    max_distance = max_distance_for(80.0)
    print(
        f"{'gallery':>10} {'add vectors/s':>14} {'search p50 ms':>14} {'p99 ms':>8} "
        f"{'memory MB':>10}"
    )
    for size in sizes:
        gallery = np.concatenate([real, synthetic(real, max(0, size - len(real)), rng)])[:size]
        index = ExactIndex()
        started = time.perf_counter()
        for start in range(0, size, 10_000):
            block = gallery[start : start + 10_000]
            index.add((f"f{start + i}", v) for i, v in enumerate(block))
        add_rate = size / (time.perf_counter() - started)
        timings = []
        for probe in probes:
            t = time.perf_counter()
            index.search(probe, 100, max_distance)
            timings.append(time.perf_counter() - t)
        p50, p99 = percentiles(timings)
        print(
            f"{size:>10,} {add_rate:>14,.0f} {p50:>14.2f} {p99:>8.2f} {size * 129 * 4 / 1e6:>10.0f}"
        )


def bench_service(real: np.ndarray, paths: list[Path], gallery: int, queries: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        services = Services.open(Settings(data_dir=Path(tmp)))
        request = Request(Actor("bench", Role.LOCAL), purpose="benchmark")
        collections.create_collection(services, request, "bench")
        # The default policy (photo-library) needs consent on record: the governed path.
        consent.record_consent(
            services,
            request,
            "bench",
            subject_kind="collection",
            subject=None,
            consented_by="benchmark",
            document_reference="none (LFW images)",
        )
        images = [p.read_bytes() for p in paths[:100]]
        started = time.perf_counter()
        indexed = [
            faces.index_faces(services, request, "bench", data, max_faces=1) for data in images
        ]
        rate = len(images) / (time.perf_counter() - started)
        face_ids = [r.indexed[0].face.face_id for r in indexed if r.indexed]
        filler = synthetic(real, gallery - len(face_ids), np.random.default_rng(1))
        with services.db.write() as session:  # a gallery of stored faces, without images
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
                for v in filler
            )
        services.rebuild_indexes()
        by_id, by_image = [], []
        for face_id, data in list(zip(face_ids, images, strict=False))[:queries]:
            t = time.perf_counter()
            faces.search_faces(services, request, "bench", face_id, max_faces=10)
            by_id.append(time.perf_counter() - t)
            t = time.perf_counter()
            faces.search_faces_by_image(services, request, "bench", data, max_faces=10)
            by_image.append(time.perf_counter() - t)
        services.close()
    print(f"\nservice, SQLite, {gallery:,} faces in the collection")
    id_p50, id_p99 = percentiles(by_id)
    image_p50, image_p99 = percentiles(by_image)
    print(f"  index_faces (LFW image -> stored face + ledger): {rate:.1f} images/s")
    print(
        f"  search_faces by face id (index + database + ledger): "
        f"p50 {id_p50:.1f} ms, p99 {id_p99:.1f} ms"
    )
    print(
        f"  search_faces_by_image (decode, detect, embed, search, ledger): "
        f"p50 {image_p50:.1f} ms, p99 {image_p99:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--real", type=int, default=2000, help="real LFW descriptors to use")
    args = parser.parse_args()
    real, paths = real_descriptors(args.real)
    print(
        f"exact search, k=100, threshold 80, {args.queries} real queries; "
        f"{len(real)} real descriptors, the rest fitted"
    )
    bench_index(real, [int(s) for s in args.sizes.split(",")], args.queries)
    bench_service(real, paths, 10_000, min(args.queries, 50))


if __name__ == "__main__":
    main()
