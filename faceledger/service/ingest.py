"""Batch ingest: many images into a collection, their pixels worked on in parallel, on local
threads or as Ray tasks across a cluster (:mod:`workers`).

Only the work (decode, detect, judge, describe, crop: :func:`indexing.analyze_image`) leaves
this process. Each image is planned here first (policy, consent) and its faces are written
here after (:func:`indexing.store_index`: the ledger event, the index feed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from faceledger.errors import FaceledgerError
from faceledger.imaging import ImageLimits, read_image_file
from faceledger.service.common import Request
from faceledger.service.context import Services
from faceledger.service.indexing import (
    AnalyzedImage,
    IndexPlan,
    analyze_image,
    plan_index,
    store_index,
)
from faceledger.service.results import IndexResult
from faceledger.service.workers import (
    EngineSpec,
    LocalWorkers,
    RayWorkers,
    Workers,
    engine_for,
    share_engine,
)
from faceledger.vision import QualityLevel

__all__ = ["LocalWorkers", "RayWorkers", "index_files"]


def analyze_task(
    spec: EngineSpec, limits: ImageLimits, data: bytes, plan: IndexPlan
) -> AnalyzedImage | FaceledgerError:
    """What a worker runs. A refused image's error comes back as the result (a task that
    raises would be retried)."""
    try:
        return analyze_image(engine_for(spec), limits, data, plan)
    except FaceledgerError as error:
        return error


Outcome = IndexResult | FaceledgerError | OSError


def index_files(
    services: Services,
    request: Request,
    collection_id: str,
    files: Iterable[tuple[Path, str]],
    workers: Workers,
    *,
    max_faces: int | None = None,
    quality_filter: QualityLevel | str = QualityLevel.AUTO,
    done: Callable[[Path, Outcome], None] = lambda path, outcome: None,
) -> None:
    """Index each (file, external image id); ``done(file, outcome)`` as each is written (or
    refused: the error, never raised)."""
    settings = services.settings
    limits = ImageLimits(
        settings.max_image_bytes, settings.max_image_pixels, settings.min_image_side
    )
    plans: dict[Path, IndexPlan] = {}

    def tasks() -> Iterator[tuple[Path, tuple]]:
        for path, external_id in files:
            try:
                plan = plan_index(
                    services,
                    request,
                    collection_id,
                    external_image_id=external_id,
                    max_faces=max_faces,
                    quality_filter=quality_filter,
                )
                data = read_image_file(path, limits)
            except (FaceledgerError, OSError) as error:
                done(path, error)
                continue
            spec = EngineSpec(
                plan.model_version, settings.detector, settings.min_face_px, settings.cnn_fallback
            )
            share_engine(spec, services.engine_for(plan.model_version))
            plans[path] = plan
            yield path, (spec, limits, data, plan)

    for path, outcome in workers.run(analyze_task, tasks()):
        plan = plans.pop(path)
        if isinstance(outcome, FaceledgerError):
            done(path, outcome)
            continue
        try:
            done(path, store_index(services, request, plan, outcome))
        except FaceledgerError as error:
            done(path, error)
