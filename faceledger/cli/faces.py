"""``faceledger detect`` and ``faceledger compare``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer
from rich.table import Table

from faceledger.cli.common import (
    Backend,
    err_console,
    exit_code_for,
    fail,
    out_console,
    print_json,
    reported_errors,
    to_plain,
)
from faceledger.config import get_settings
from faceledger.errors import FaceledgerError, NoFaceDetected
from faceledger.vision import Face, QualityLevel, gate_reasons
from faceledger.vision.types import LANDMARK_NAMES

if TYPE_CHECKING:
    from faceledger.vision.engine import FaceEngine

DetectorOpt = Annotated[
    str, typer.Option(help="Face detector: yunet (fast, small faces), hog, or cnn (slow).")
]
MinFaceOpt = Annotated[
    int | None,
    typer.Option(
        min=8,
        max=4096,
        help="The smallest face to find, in pixels; smaller costs more "
        "(default: $FACELEDGER_MIN_FACE_PX, 40).",
    ),
]
UpsampleOpt = Annotated[
    int | None,
    typer.Option(min=0, max=3, help="HOG/CNN: image doublings (from --min-face-px if unset)."),
]
BackendOpt = Annotated[
    Backend, typer.Option(help="Where the networks run: onnx (fast) or dlib (the reference).")
]
BATCH = 32  # images decoded and embedded together by --embed


def _engine(
    detector: str, min_face_px: int | None, upsample: int | None, backend: Backend
) -> FaceEngine:
    from faceledger.vision.engine import FaceEngine

    return FaceEngine(
        detector=detector,
        min_face_px=min_face_px or get_settings().min_face_px,
        upsample=upsample,
        backend=backend.value,
    )


def _face_row(face: Face, level: QualityLevel) -> dict[str, object]:
    reasons = gate_reasons(face.quality, level)
    embedding = {} if face.embedding is None else {"embedding": face.embedding.tolist()}
    return {
        **embedding,
        "box": to_plain(face.box),
        "landmarks": [
            {"type": name, "x": p.x, "y": p.y}
            for name, p in zip(LANDMARK_NAMES, face.landmarks, strict=True)
        ],
        "confidence": face.confidence,
        "detector": face.detector,
        "quality": to_plain(face.quality),
        "gate": {"level": level.value, "passed": not reasons, "reasons": to_plain(reasons)},
    }


def detect(
    images: Annotated[list[Path], typer.Argument(help="Image files.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object for all images.")
    ] = False,
    detector: DetectorOpt = "yunet",
    min_face_px: MinFaceOpt = None,
    upsample: UpsampleOpt = None,
    quality_filter: Annotated[
        QualityLevel, typer.Option(help="Gate level whose verdict is shown per face.")
    ] = QualityLevel.AUTO,
    embed: Annotated[
        bool, typer.Option("--embed", help="Also compute each face's 128-d descriptor (JSON).")
    ] = False,
    backend: BackendOpt = Backend.onnx,
) -> None:
    """Find faces: box (pixels: left, top, width, height), confidence, quality, pose, gate."""
    with reported_errors():
        engine = _engine(detector, min_face_px, upsample, backend)
    results: list[dict[str, object]] = []
    worst = 0
    for start in range(0, len(images), BATCH):
        loaded, failed = _load_all(engine, images[start : start + BATCH])
        for path, error in failed.items():
            worst = max(worst, exit_code_for(error))
            if not as_json:
                err_console.print(
                    f"[red]error[/red] {path}: {error.code}: {error.message}", highlight=False
                )
        paths = list(loaded)
        found = (
            engine.analyze_many([loaded[p] for p in paths])
            if embed
            else [engine.detect(loaded[p]) for p in paths]
        )
        by_path = dict(zip(paths, found, strict=True))
        for path in images[start : start + BATCH]:
            if path in failed:
                error = failed[path]
                results.append(
                    {"image": str(path), "error": {"code": error.code, "message": error.message}}
                )
                continue
            results.append(
                {"image": str(path), "faces": [_face_row(f, quality_filter) for f in by_path[path]]}
            )
            if not as_json:
                _print_table(path, by_path[path], quality_filter)
    if as_json:
        print_json({"images": results})
    if worst:
        raise typer.Exit(worst)


def _load_all(
    engine: FaceEngine, paths: list[Path]
) -> tuple[dict[Path, np.ndarray], dict[Path, FaceledgerError]]:
    loaded: dict[Path, np.ndarray] = {}
    failed: dict[Path, FaceledgerError] = {}
    for path in paths:
        try:
            loaded[path] = engine.load(path)
        except FaceledgerError as error:
            failed[path] = error
    return loaded, failed


def _print_table(path: Path, faces: list[Face], level: QualityLevel) -> None:
    # A heading, not a table title: titles wrap with the terminal and split their text.
    out_console.print(f"{path}: {len(faces)} face(s)", soft_wrap=True, highlight=False)
    table = Table()
    for column in (
        "#",
        "box l,t,w,h",
        "conf",
        "bright",
        "sharp",
        "yaw/pitch/roll",
        f"gate {level.value}",
    ):
        table.add_column(column)
    for i, face in enumerate(faces, 1):
        b, q = face.box, face.quality
        reasons = gate_reasons(q, level)
        table.add_row(
            str(i),
            f"{b.left:.0f},{b.top:.0f},{b.width:.0f},{b.height:.0f}",
            f"{face.confidence:.1f}",
            f"{q.brightness:.0f}",
            f"{q.sharpness:.0f}",
            f"{q.pose.yaw:.0f}/{q.pose.pitch:.0f}/{q.pose.roll:.0f}",
            "pass" if not reasons else ", ".join(r.value for r in reasons),
        )
    out_console.print(table)


def compare(
    source: Annotated[Path, typer.Argument(help="Image whose largest face is compared.")],
    target: Annotated[Path, typer.Argument(help="Image whose every face is compared.")],
    threshold: Annotated[
        float, typer.Option(min=0, max=100, help="Similarity (0-100) at which faces match.")
    ] = 80.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    detector: DetectorOpt = "yunet",
    min_face_px: MinFaceOpt = None,
    upsample: UpsampleOpt = None,
    backend: BackendOpt = Backend.onnx,
) -> None:
    """Compare the largest face of SOURCE with every face of TARGET."""
    with reported_errors():
        engine = _engine(detector, min_face_px, upsample, backend)
        source_faces = engine.analyze(source)
        if not source_faces:
            raise fail(NoFaceDetected(f"no face found in the source image {source}"))
        probe = source_faces[0]
        target_faces = engine.analyze(target)
    matches = []
    for face in target_faces:
        match = engine.compare(probe, face)
        matches.append(
            {
                "box": to_plain(face.box),
                "similarity": match.similarity,
                "distance": match.distance,
                "false_match_rate": match.false_match_rate,
                "fmr_upper_bound": match.fmr_upper_bound,
                "match": match.similarity >= threshold,
            }
        )
    if as_json:
        print_json(
            {
                "source": str(source),
                "source_face": to_plain(probe.box),
                "target": str(target),
                "threshold": threshold,
                "faces": matches,
            }
        )
        return
    if not matches:
        out_console.print(f"no face found in the target image {target}")
        return
    table = Table(title=f"{source} (largest face) vs {target}", title_justify="left")
    for column in (
        "#",
        "box l,t,w,h",
        "similarity",
        "est. false match rate",
        f"match at {threshold:g}",
    ):
        table.add_column(column)
    for i, m in enumerate(matches, 1):
        b = m["box"]
        fmr = f"{'< ' if m['fmr_upper_bound'] else ''}{m['false_match_rate']:.2g}"
        table.add_row(
            str(i),
            f"{b['left']:.0f},{b['top']:.0f},{b['width']:.0f},{b['height']:.0f}",
            f"{m['similarity']:.2f}",
            fmr,
            "yes" if m["match"] else "no",
        )
    out_console.print(table)
    out_console.print("A match is a candidate for a person to review, not an identification.")
