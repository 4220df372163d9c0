"""Batch ingest: many images into a collection, their pixels worked on in parallel, on local
threads or as Ray tasks across a cluster.

Only the work (decode, detect, judge, describe, crop: :func:`indexing.analyze_image`) leaves
this process. Each image is planned here first (policy, consent) and its faces are written
here after (:func:`indexing.store_index`: the ledger event, the index feed), so a cluster adds
compute, never a path around governance. A bounded number of images is in flight at once, so
an archive of any size is streamed, not loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from faceledger.errors import FaceledgerError, InvalidParameterError
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
from faceledger.vision import FaceEngine, QualityLevel


@dataclass(frozen=True)
class EngineSpec:
    """How to make the engine a worker needs (the service's detection settings)."""

    model_version: str
    detector: str
    min_face_px: int
    cnn_fallback: bool


_engines: dict[EngineSpec, FaceEngine] = {}  # one per worker process and model
_engines_lock = threading.Lock()


def analyze_task(
    spec: EngineSpec, limits: ImageLimits, data: bytes, plan: IndexPlan
) -> AnalyzedImage | FaceledgerError:
    """What a worker runs: the engine is made once per process and kept. A refused image's
    error comes back as the result (a task that raises would be retried)."""
    with _engines_lock:
        engine = _engines.get(spec)
        if engine is None:
            engine = _engines[spec] = FaceEngine.for_model(
                spec.model_version,
                detector=spec.detector,
                min_face_px=spec.min_face_px,
                cnn_fallback=spec.cnn_fallback,
            )
    try:
        return analyze_image(engine, limits, data, plan)
    except FaceledgerError as error:
        return error


Task = tuple[EngineSpec, ImageLimits, bytes, IndexPlan]


class Workers(Protocol):
    """Runs :func:`analyze_task` over tasks, ``window`` at a time, yielding each task's key
    and outcome as it finishes (in any order)."""

    name: str

    def run(self, tasks: Iterator[tuple[Any, Task]]) -> Iterator[tuple[Any, Any]]: ...

    def close(self) -> None: ...


class _Windowed:
    """Keeps ``window`` tasks running, yielding each as it finishes."""

    window: int

    def run(self, tasks: Iterator[tuple[Any, Task]]) -> Iterator[tuple[Any, Any]]:
        running: dict[Any, Any] = {}
        for key, task in tasks:
            running[self._submit(task)] = key
            if len(running) >= self.window:
                yield from self._finished(running)
        while running:
            yield from self._finished(running)

    def _submit(self, task: Task) -> Any: ...

    def _finished(self, running: dict[Any, Any]) -> Iterator[tuple[Any, Any]]: ...


class LocalWorkers(_Windowed):
    def __init__(self, threads: int) -> None:
        self.name = f"{threads} local threads"
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="ingest")
        self.window = 2 * threads

    def _submit(self, task: Task) -> Future:
        return self._pool.submit(analyze_task, *task)

    def _finished(self, running: dict[Any, Any]) -> Iterator[tuple[Any, Any]]:
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            yield running.pop(future), future.result()

    def close(self) -> None:
        self._pool.shutdown()


class RayWorkers(_Windowed):
    """Tasks on a Ray cluster: ``address`` of a running one (``host:port``, ``ray://...``,
    ``auto``), or None for a Ray started in this process for the run."""

    def __init__(self, address: str | None, window: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise InvalidParameterError("--ray needs Ray: pip install 'faceledger[ray]'") from None
        self._ray = ray
        if not ray.is_initialized():
            # A Ray of our own for the run, or a running cluster (which has its own settings).
            options = {"include_dashboard": False} if address is None else {}
            ray.init(address=address, log_to_driver=False, **options)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.name = f"Ray ({cpus} CPUs)"
        self.window = window or 2 * cpus
        self._analyze = ray.remote(num_cpus=1, max_retries=2)(analyze_task)

    def _submit(self, task: Task) -> Any:
        return self._analyze.remote(*task)

    def _finished(self, running: dict[Any, Any]) -> Iterator[tuple[Any, Any]]:
        done, _ = self._ray.wait(list(running), num_returns=1)
        for ref in done:
            yield running.pop(ref), self._ray.get(ref)

    def close(self) -> None:
        self._ray.shutdown()


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

    def tasks() -> Iterator[tuple[Path, Task]]:
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
            with _engines_lock:  # local threads use this process's engine; Ray workers their own
                _engines.setdefault(spec, services.engine_for(plan.model_version))
            plans[path] = plan
            yield path, (spec, limits, data, plan)

    for path, outcome in workers.run(tasks()):
        plan = plans.pop(path)
        if isinstance(outcome, FaceledgerError):
            done(path, outcome)
            continue
        try:
            done(path, store_index(services, request, plan, outcome))
        except FaceledgerError as error:
            done(path, error)
