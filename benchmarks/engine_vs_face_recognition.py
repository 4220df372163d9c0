"""faceledger's engine and the face_recognition library side by side, same images, one run.

Both wrap the same dlib models, so this measures the pipeline around them. Run with
``make bench`` (it installs face_recognition 1.3.0 without its dependencies).

    python benchmarks/engine_vs_face_recognition.py [--images 200] [--data DIR]
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from faceledger.evaluation import lfw
from faceledger.imaging import load_image
from faceledger.vision import Box, FaceEngine


def timed(work: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    count = work()
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pkg_resources deprecation, from the peer
        import face_recognition

    root = lfw.resolve_lfw_dir(args.data)
    pairs = lfw.read_pairs(root / "protocol" / "pairs.txt")
    names = sorted({p.first for p in pairs} | {p.second for p in pairs})
    step = max(1, len(names) // args.images)
    paths = [root / "images" / n for n in names[::step][: args.images]]
    arrays = [load_image(p) for p in paths]

    ours = FaceEngine(upsample=1)  # face_recognition's default upsampling, for a fair match
    ours_plain = FaceEngine(upsample=1, flip_fusion=False)

    rows: list[tuple[str, float, float]] = []

    def rate(work: Callable[[], int]) -> float:
        seconds, faces = timed(work)
        return faces / seconds

    # Detection (faceledger also finds landmarks and scores quality at this step).
    fr_boxes = [face_recognition.face_locations(a) for a in arrays[:5]]  # warm-up
    our_faces = [ours.detect(a) for a in arrays[:5]]

    def fr_detect() -> int:
        fr_boxes[:] = [face_recognition.face_locations(a) for a in arrays]
        return sum(map(len, fr_boxes))

    def fl_detect() -> int:
        our_faces[:] = [ours.detect(a) for a in arrays]
        return sum(map(len, our_faces))

    rows.append(("detect (HOG, upsample 1)", rate(fr_detect), rate(fl_detect)))

    # Embedding the faces found. The peer runs its landmark model again inside
    # face_encodings; faceledger reuses the landmarks found at detection.
    fr_vectors: list[np.ndarray] = []

    def fr_embed() -> int:
        fr_vectors.clear()
        for a, boxes in zip(arrays, fr_boxes, strict=True):
            fr_vectors.extend(face_recognition.face_encodings(a, known_face_locations=boxes))
        return len(fr_vectors)

    def fl_embed(engine: FaceEngine) -> Callable[[], int]:
        return lambda: sum(len(engine.embed(a, f)) for a, f in zip(arrays, our_faces, strict=True))

    fr_rate = rate(fr_embed)
    rows.append(("embed, one descriptor per face", fr_rate, rate(fl_embed(ours_plain))))
    rows.append(("embed, faceledger with flip fusion", fr_rate, rate(fl_embed(ours))))

    # End to end from the file: decode, detect, align, embed.
    def fr_end_to_end() -> int:
        return sum(
            len(face_recognition.face_encodings(face_recognition.load_image_file(p))) for p in paths
        )

    rows.append(
        (
            "end to end (file -> descriptors)",
            rate(fr_end_to_end),
            rate(lambda: sum(len(ours.analyze(p)) for p in paths)),
        )
    )

    # Same boxes, same landmarks model, same network: the descriptors should agree.
    ours_same: list[np.ndarray] = []
    for a, boxes in zip(arrays, fr_boxes, strict=True):
        # face_recognition's (top, right, bottom, left) includes its right and bottom pixel.
        given = [
            Box(left, top, right - left + 1, bottom - top + 1) for top, right, bottom, left in boxes
        ]
        ours_same.extend(f.embedding for f in ours_plain.embed(a, given))
    difference = float(np.max(np.abs(np.stack(ours_same) - np.stack(fr_vectors))))

    print(f"{len(paths)} LFW images, one process, {platform.processor() or platform.machine()}")
    print(f"{'stage':38} {'face_recognition':>17} {'faceledger':>11} {'ratio':>6}")
    for stage, fr_rate, fl_rate in rows:
        print(f"{stage:38} {fr_rate:13.1f} f/s {fl_rate:7.1f} f/s {fl_rate / fr_rate:5.2f}x")
    print(f"largest |difference| between the two libraries' descriptors: {difference:.2e}")


if __name__ == "__main__":
    main()
