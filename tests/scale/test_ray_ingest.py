"""`faceledger index --ray`: images analysed as tasks on a real Ray cluster (started here with
`ray start --head` on loopback, two worker CPUs), every write made by the CLI's process. The
result is the local path's: the same faces with the same boxes and descriptors, each image's
IndexFaces event on one verified ledger; a refused image is reported, not fatal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from faceledger.config import Settings
from faceledger.service.context import Services
from faceledger.store.schema import FaceRow
from tests.api.conftest import lfw_image, lfw_people
from tests.security.server_process import cli


def faces_of(data_dir: Path, collection: str) -> dict[str, list[tuple[dict, np.ndarray]]]:
    services = Services.open(Settings(data_dir=data_dir))
    try:
        with services.db.read() as session:
            rows = session.query(FaceRow).filter(FaceRow.collection_id == collection).all()
            found: dict[str, list[tuple[dict, np.ndarray]]] = {}
            for row in rows:
                vector = np.frombuffer(row.embedding, dtype=np.float32)
                found.setdefault(row.external_image_id, []).append((row.box, vector))
    finally:
        services.close()
    return {k: sorted(v, key=lambda f: (f[0]["left"], f[0]["top"])) for k, v in found.items()}


def test_ray_ingest_matches_the_local_path(ray_cluster, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("FACELEDGER_DATABASE_URL", raising=False)
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in lfw_people(30):
        shutil.copy(lfw_image(name, 1), archive / f"{name}.jpg")
    (archive / "broken.jpg").write_bytes(lfw_image(lfw_people(1)[0], 1).read_bytes()[:300])
    data_dir = tmp_path / "data"
    for collection in ("local", "ray"):
        cli(data_dir, "collections", "create", collection)
        cli(
            data_dir,
            "consent",
            "record",
            collection,
            "--by",
            "t",
            "--document",
            "d",
            "--collection",
        )

    local = cli(data_dir, "index", "local", str(archive), "--json", check=False)
    remote = cli(
        data_dir, "index", "ray", str(archive), "--ray-address", ray_cluster, "--json", check=False
    )
    summaries = [json.loads(r.stdout) for r in (local, remote)]
    assert summaries[1].pop("analysed_by") == "Ray (2 CPUs)"
    assert summaries[0].pop("analysed_by").endswith("local threads")
    assert summaries[0] == summaries[1], summaries
    assert summaries[1]["indexed_faces"] >= 30
    assert sum(summaries[1]["failed_images"].values()) == 1
    assert remote.returncode == local.returncode == 3  # one image refused
    assert "skipped" in remote.stderr and "broken.jpg" in remote.stderr

    by_local, by_ray = faces_of(data_dir, "local"), faces_of(data_dir, "ray")
    assert by_local.keys() == by_ray.keys() and len(by_ray) == 30
    for name, faces in by_local.items():
        assert [box for box, _ in faces] == [box for box, _ in by_ray[name]]
        for (_, a), (_, b) in zip(faces, by_ray[name], strict=True):
            assert float(np.max(np.abs(a - b))) < 1e-5

    verified = cli(data_dir, "ledger", "verify", "--json", check=False)
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"]
    events = cli(data_dir, "ledger", "export").stdout.splitlines()
    indexed = [json.loads(line) for line in events if '"IndexFaces"' in line]
    collections = [e["event"]["collection_id"] for e in indexed]
    assert collections.count("local") == collections.count("ray") == 30
