"""The activation ranges SFace's int8 graph is quantized with, measured on UTKFace photos.

UTKFace, not LFW: LFW stays an independent test of the quantized model. Photos are taken in
file-name order, every second one of the first ``2 * count``, so the set spans the data set's
ages and groups without choosing by label; each photo's face nearest its centre is aligned as
SFace sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from faceledger.errors import InvalidParameterError
from faceledger.evaluation.embedder import subject_face
from faceledger.vision import FaceEngine
from faceledger.vision.dnn import sface, sface_int8
from faceledger.vision.dnn.runtime import build_graph

DEFAULT_COUNT = 200


def calibration_photos(utkface_dir: Path, count: int = DEFAULT_COUNT) -> list[Path]:
    images = utkface_dir / "images"
    if not images.is_dir():
        raise InvalidParameterError(f"no UTKFace images at {images}")
    return sorted(images.glob("*.jpg"))[: 2 * count : 2]


def measure_int8_ranges(
    utkface_dir: Path,
    out: Path,
    *,
    cache_dir: Path,
    count: int = DEFAULT_COUNT,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the ranges to ``out``; returns how many faces they were measured on."""
    engine = FaceEngine.for_model("sface", cnn_fallback=True)
    crops = []
    for photo in calibration_photos(utkface_dir, count):
        rgb = engine.load(photo)
        subject = subject_face(engine.detect(rgb), rgb.shape[1], rgb.shape[0])
        if subject is not None:
            crops.append(engine.sface_crop(rgb, subject)[1])
        if progress:
            progress(1)
    if not crops:
        raise InvalidParameterError(f"no face found in the UTKFace photos at {utkface_dir}")
    float_graph = onnx.load(str(build_graph("sface", cache_dir)))
    sface_int8.measure_ranges(float_graph, sface.network_input(np.stack(crops)), out)
    return len(crops)
