"""Independent testing (RCW 43.386 asks vendors to allow it): auditors score labelled pairs of
images or templates without storing anything, and read the latest audit report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceledger.errors import InvalidParameterError, NoFaceDetected, NotFoundError
from faceledger.service.common import Request, analyze, read_image
from faceledger.service.context import Services
from faceledger.vision import FaceEngine

MAX_PAIRS = 100


@dataclass(frozen=True)
class Side:
    image: bytes | None = None
    template: list[float] | None = None


@dataclass(frozen=True)
class ScoredPair:
    similarity: float | None
    distance: float | None
    false_match_rate: float | None
    label: str | None
    error: str | None = None


def compare_pairs(
    services: Services,
    request: Request,
    pairs: list[tuple[Side, Side, str | None]],
    *,
    face_model: str | None = None,
) -> tuple[str, list[ScoredPair]]:
    """Score each pair (largest face of an image, or a 128-number template of the model) with
    ``face_model`` (default: the server's default model, what new collections use); returns
    the model's version and the scores. Nothing is stored; the call, with the images'
    hashes and the scores, is on the ledger."""
    request.actor.require("evaluation:run")
    if not 1 <= len(pairs) <= MAX_PAIRS:
        raise InvalidParameterError(f"send between 1 and {MAX_PAIRS} pairs")
    version = services.model_version(face_model)
    engine = services.engine_for(version)
    hashes: list[str] = []
    scored = []
    for a, b, label in pairs:
        if label not in (None, "same", "different"):
            raise InvalidParameterError("a label is 'same', 'different' or absent")
        try:
            va, vb = _vector(services, engine, a, hashes), _vector(services, engine, b, hashes)
        except NoFaceDetected as error:
            scored.append(ScoredPair(None, None, None, label, error.code))
            continue
        match = engine.compare(va, vb)
        scored.append(ScoredPair(match.similarity, match.distance, match.false_match_rate, label))
    with services.write_lock, services.db.write() as session:
        services.ledger.append(
            session,
            request.event(
                "EvaluationCompare",
                parameters={
                    "pairs": len(pairs),
                    "image_sha256": hashes,
                    "face_model_version": version,
                },
                results={
                    "similarities": [s.similarity for s in scored],
                    "labels": [s.label for s in scored],
                },
            ),
        )
    return version, scored


def _vector(services: Services, engine: FaceEngine, side: Side, hashes: list[str]) -> np.ndarray:
    if (side.image is None) == (side.template is None):
        raise InvalidParameterError("each side is an image or a template, not both")
    if side.template is not None:
        vector = np.asarray(side.template, dtype=np.float32)
        if vector.shape != (128,) or not np.all(np.isfinite(vector)):
            raise InvalidParameterError("a template is 128 finite numbers")
        return vector
    assert side.image is not None
    with services.gate.slot():
        image = read_image(services, side.image)
        faces = analyze(services, image, engine)
    hashes.append(image.sha256)
    if not faces:
        raise NoFaceDetected("no face in an evaluation image")
    assert faces[0].embedding is not None
    return faces[0].embedding


def latest_report(services: Services, request: Request, kind: str = "json") -> Any:
    request.actor.require("evaluation:read")
    path = Path(services.settings.data_dir) / "audit" / f"latest-audit.{kind}"
    if not path.is_file():
        raise NotFoundError("no audit has been published yet: run `faceledger audit run`")
    text = path.read_text()
    return json.loads(text) if kind == "json" else text
