"""faceledger's engine and the face_recognition library side by side, same images, one run.

Both use dlib's own model files; face_recognition runs them on dlib (the prebuilt wheel has no
BLAS), faceledger runs the two networks on ONNX Runtime (HOG and landmarks stay on dlib). Run with
``make bench`` (it installs face_recognition 1.3.0 without its dependencies, and PyAV to read
video frames).

    python benchmarks/engine_vs_face_recognition.py [--images 200] [--frames 5] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime

from faceledger.config import get_settings
from faceledger.evaluation import lfw
from faceledger.imaging import load_image
from faceledger.vision import Box, FaceEngine
from faceledger.vision.dnn.reader import DlibNetwork
from faceledger.vision.dnn.runtime import default_threads, load_network

VIDEO = "videos/facenet-pytorch-video.mp4"  # 1920x1080, several faces; scaled to 1280x720
BATCH = 32


def timed(work: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    count = work()
    return time.perf_counter() - started, count


def rate(work: Callable[[], int]) -> float:
    seconds, count = timed(work)
    return count / seconds


def video_frames(path: Path, count: int) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [
            f.to_ndarray(width=1280, height=720, format="rgb24") for f in container.decode(stream)
        ]
    step = max(1, len(frames) // count)
    return [np.ascontiguousarray(f) for f in frames[::step][:count]]


def descriptor_flops(network: DlibNetwork) -> float:
    """Multiply-adds x 2 of one 150x150 chip through the ResNet (convolutions and the fc)."""
    channels, rows, columns = 3, network.input["rows"], network.input["columns"]
    shapes: dict[int, tuple[int, int, int]] = {}
    flops = 0.0
    for layer in network.layers:
        if layer.kind == "tag":
            shapes[layer.attrs["id"]] = (channels, rows, columns)
        elif layer.kind == "skip":
            channels, rows, columns = shapes[layer.attrs["id"]]
        elif layer.kind == "con":
            (kr, kc), (sy, sx), (py, px) = (
                layer.attrs["kernel"],
                layer.attrs["stride"],
                layer.attrs["padding"],
            )
            rows, columns = 1 + (rows + 2 * py - kr) // sy, 1 + (columns + 2 * px - kc) // sx
            flops += 2.0 * channels * kr * kc * layer.attrs["filters"] * rows * columns
            channels = layer.attrs["filters"]
        elif layer.kind in ("max_pool", "avg_pool") and layer.attrs["window"] != (0, 0):
            (wr, wc), (sy, sx) = layer.attrs["window"], layer.attrs["stride"]
            rows, columns = 1 + (rows - wr) // sy, 1 + (columns - wc) // sx
        elif layer.kind == "add_prev":
            other = shapes[layer.attrs["tag"]]
            channels, rows, columns = (
                max(a, b) for a, b in zip((channels, rows, columns), other, strict=True)
            )
        elif layer.kind == "fc":
            flops += 2.0 * layer.attrs["inputs"] * layer.attrs["outputs"]
    return flops


def sgemm_gflops(threads: int) -> float:
    """What this CPU sustains on a large float32 matrix product (numpy's BLAS), GFLOP/s."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    a @ a
    best = 0.0
    for _ in range(3):
        seconds, _ = timed(lambda: int((a @ a)[0, 0] * 0))
        best = max(best, 2 * 2048**3 / seconds / 1e9)
    return best


def nominal_peak_gflops(cores: int) -> float | None:
    """cores x base clock x float32 FLOPs per cycle (two FMA pipes: 64 with AVX-512, 32 with
    AVX2). Base clock from /proc/cpuinfo; turbo clocks can exceed it."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    mhz = next((float(line.split(":")[1]) for line in info.splitlines() if "cpu MHz" in line), 0)
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    per_cycle = 64 if " avx512f" in flags else 32 if " fma" in flags else 8
    return cores * mhz / 1000 * per_cycle or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--frames", type=int, default=5)
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
    threads = default_threads()

    # HOG at face_recognition's default upsampling (1), for a like-for-like match of stages;
    # end to end, faceledger's defaults (YuNet) on one thread, as a single request runs.
    ours = FaceEngine(detector="hog", upsample=1, threads=threads)
    ours_plain = FaceEngine(detector="hog", upsample=1, flip_fusion=False, threads=threads)
    # The default face model of new collections, SFace in float32 (the default before int8),
    # and dlib's descriptor with and without flip fusion (the model of the first collections).
    default_model = get_settings().face_model
    default_one_thread = FaceEngine.for_model(default_model, cnn_fallback=True, threads=1)
    dlib_one_thread = FaceEngine.for_model("dlib", cnn_fallback=True, threads=1)
    plain_one_thread = FaceEngine(flip_fusion=False, cnn_fallback=True, threads=1)
    hog_one_thread = FaceEngine(detector="hog", upsample=1, threads=1)
    rows: list[tuple[str, float, float]] = []

    # Detection (faceledger also finds landmarks and scores quality at this step).
    fr_boxes = [face_recognition.face_locations(a) for a in arrays[:5]]  # warm-up
    our_faces = [ours.detect(a) for a in arrays[:5]]

    def fr_detect() -> int:
        fr_boxes[:] = [face_recognition.face_locations(a) for a in arrays]
        return sum(map(len, fr_boxes))

    def fl_detect() -> int:
        our_faces[:] = [ours.detect(a) for a in arrays]
        return sum(map(len, our_faces))

    fr_detect_rate = rate(fr_detect)
    rows.append(("detect (HOG, upsample 1, one thread)", fr_detect_rate, rate(fl_detect)))
    rows.append(
        (
            "detect, faceledger's default (YuNet), one thread",
            fr_detect_rate,
            rate(lambda: sum(len(default_one_thread.detect(a)) for a in arrays)),
        )
    )

    # Embedding the faces found. The peer runs its landmark model again inside
    # face_encodings; faceledger reuses the landmarks found at detection and batches.
    fr_vectors: list[np.ndarray] = []

    def fr_embed() -> int:
        fr_vectors.clear()
        for a, boxes in zip(arrays, fr_boxes, strict=True):
            fr_vectors.extend(face_recognition.face_encodings(a, known_face_locations=boxes))
        return len(fr_vectors)

    def fl_embed(engine: FaceEngine) -> Callable[[], int]:
        items = list(zip(arrays, our_faces, strict=True))

        def work() -> int:
            done = 0
            for i in range(0, len(items), BATCH):
                done += sum(map(len, engine.embed_many(items[i : i + BATCH])))
            return done

        return work

    fl_embed(ours_plain)()  # warm-up: ONNX Runtime plans its first runs
    fr_rate = rate(fr_embed)
    rows.append(("embed, one descriptor per face", fr_rate, rate(fl_embed(ours_plain))))
    rows.append(("embed, faceledger with flip fusion", fr_rate, rate(fl_embed(ours))))

    # The MMOD CNN detector on 1280x720 video frames, no upsampling.
    data_root = args.data or get_settings().eval_data
    frames = video_frames(Path(data_root) / VIDEO, args.frames)
    cnn = FaceEngine(detector="cnn", upsample=0, threads=threads)
    cnn.detect(frames[0])
    fr_frames = rate(lambda: len([face_recognition.face_locations(f, 0, "cnn") for f in frames]))
    fl_frames = rate(lambda: len([cnn.detect(f) for f in frames]))
    rows.append(("MMOD CNN on 1280x720 frames (frames/s)", fr_frames, fl_frames))

    # End to end from the file: decode, detect, align, embed.
    def fr_end_to_end() -> int:
        return sum(
            len(face_recognition.face_encodings(face_recognition.load_image_file(p))) for p in paths
        )

    def fl_end_to_end(engine: FaceEngine) -> Callable[[], int]:
        return lambda: sum(
            len(faces)
            for i in range(0, len(paths), BATCH)
            for faces in engine.analyze_many(paths[i : i + BATCH])
        )

    def one_request_at_a_time(engine: FaceEngine) -> Callable[[], int]:
        return lambda: sum(len(engine.analyze(p)) for p in paths)

    fr_e2e = rate(fr_end_to_end)
    rows.append(("end to end (file -> descriptors), HOG", fr_e2e, rate(fl_end_to_end(ours))))
    rows.append(
        ("end to end, HOG, one descriptor per face", fr_e2e, rate(fl_end_to_end(ours_plain)))
    )
    rows.append(("end to end, HOG, one thread", fr_e2e, rate(fl_end_to_end(hog_one_thread))))
    rows.append(
        (
            f"end to end, defaults ({default_model}), ONE thread, per request",
            fr_e2e,
            rate(one_request_at_a_time(default_one_thread)),
        )
    )
    if default_model != "sface":
        rows.append(
            (
                "  the same, SFace in float32",
                fr_e2e,
                rate(
                    one_request_at_a_time(
                        FaceEngine.for_model("sface", cnn_fallback=True, threads=1)
                    )
                ),
            )
        )
    rows.append(
        (
            "  the same, dlib's descriptor with flip fusion",
            fr_e2e,
            rate(one_request_at_a_time(dlib_one_thread)),
        )
    )
    rows.append(
        (
            "  the same, dlib's descriptor, one per face (the peer's work)",
            fr_e2e,
            rate(one_request_at_a_time(plain_one_thread)),
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

    # How close the descriptor gets to the CPU's arithmetic limit.
    flops = descriptor_flops(load_network("resnet128"))
    chips = [c for _, c in ours_plain._detect_with_chips(arrays[0])] * 64
    ours_plain._describe(chips)
    per_face = min(timed(lambda: len(ours_plain._describe(chips)))[0] for _ in range(5)) / 64
    achieved = flops / per_face / 1e9
    ceiling = sgemm_gflops(threads)
    peak = nominal_peak_gflops(threads)

    cpu = platform.processor() or platform.machine()
    print(
        f"{len(paths)} LFW images, {len(frames)} video frames; {cpu}, {threads} cores; "
        f"faceledger: ONNX Runtime {onnxruntime.__version__}, {threads} intra-op threads, "
        f"batches of {BATCH} images; face_recognition: dlib, one thread (it has no other)"
    )
    print(f"{'stage':50} {'face_recognition':>17} {'faceledger':>11} {'ratio':>7}")
    for stage, theirs, mine in rows:
        print(f"{stage:50} {theirs:13.2f} /s {mine:9.2f} /s {mine / theirs:6.1f}x")
    print(f"largest |difference| between the two libraries' descriptors: {difference:.2e}")
    print(
        f"descriptor: {flops / 1e9:.2f} GFLOP per face, {per_face * 1000:.2f} ms per face in "
        f"batches of 64 -> {achieved:.0f} GFLOP/s; numpy's float32 matrix product "
        f"({threads} threads) sustains {ceiling:.0f} GFLOP/s here"
        + (f"; nominal peak {peak:.0f} GFLOP/s ({achieved / peak:.0%})" if peak else "")
    )


if __name__ == "__main__":
    main()
