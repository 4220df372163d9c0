"""Where pixel work runs: on this process's threads, or as Ray tasks across a cluster.

Batch ingest (:mod:`ingest`) and video jobs (:mod:`video`) hand pure functions of the engine
(decode, detect, judge, describe) to a :class:`Workers`; every write stays in the calling
process, so a cluster adds compute, never a path around governance. A bounded number of tasks
is in flight at once, so work of any size is streamed, not loaded.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

from faceledger.errors import ConfigurationError, InvalidParameterError, WorkersFailed
from faceledger.vision import FaceEngine


@dataclass(frozen=True)
class EngineSpec:
    """How to make the engine a worker needs (the service's detection settings)."""

    model_version: str
    detector: str
    min_face_px: int
    cnn_fallback: bool


_engines: dict[EngineSpec, FaceEngine] = {}  # one per worker process and model
_engines_lock = threading.Lock()
_engine_threads: int | None = None  # a Ray task has one CPU: its engine one thread


def engine_for(spec: EngineSpec) -> FaceEngine:
    """This process's engine for ``spec``, made on first use and kept."""
    with _engines_lock:
        engine = _engines.get(spec)
        if engine is None:
            engine = _engines[spec] = FaceEngine.for_model(
                spec.model_version,
                detector=spec.detector,
                min_face_px=spec.min_face_px,
                cnn_fallback=spec.cnn_fallback,
                threads=_engine_threads,
            )
        return engine


def share_engine(spec: EngineSpec, engine: FaceEngine) -> None:
    """Local threads use the service's own engine rather than a second one."""
    with _engines_lock:
        _engines.setdefault(spec, engine)


class Workers(Protocol):
    """Runs ``function(*task)`` over tasks, ``window`` at a time, yielding each task's key and
    outcome as it finishes (in any order)."""

    name: str

    def run(
        self, function: Callable[..., Any], tasks: Iterator[tuple[Any, tuple]]
    ) -> Iterator[tuple[Any, Any]]: ...

    def close(self) -> None: ...


class _Windowed:
    """Keeps ``window`` tasks running, yielding each as it finishes."""

    window: int

    def run(
        self, function: Callable[..., Any], tasks: Iterator[tuple[Any, tuple]]
    ) -> Iterator[tuple[Any, Any]]:
        running: dict[Any, Any] = {}
        try:
            for key, task in tasks:
                running[self._submit(function, task)] = key
                if len(running) >= self.window:
                    yield from self._finished(running)
            while running:
                yield from self._finished(running)
        finally:
            self._abandon(list(running))  # a consumer that stops early stops the rest

    def _submit(self, function: Callable[..., Any], task: tuple) -> Any: ...

    def _finished(self, running: dict[Any, Any]) -> Iterator[tuple[Any, Any]]: ...

    def _abandon(self, running: list[Any]) -> None: ...


class LocalWorkers(_Windowed):
    def __init__(self, threads: int) -> None:
        self.name = f"{threads} local threads"
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="workers")
        self.window = 2 * threads

    def _submit(self, function: Callable[..., Any], task: tuple) -> Future:
        return self._pool.submit(function, *task)

    def _finished(self, running: dict[Any, Any]) -> Iterator[tuple[Any, Any]]:
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            yield running.pop(future), future.result()

    def _abandon(self, running: list[Any]) -> None:
        for future in running:
            future.cancel()

    def close(self) -> None:
        self._pool.shutdown()


def _on_one_cpu(function: Callable[..., Any], *task: Any) -> Any:
    global _engine_threads
    _engine_threads = 1
    return function(*task)


def _check_reachable(address: str, seconds: float = 5.0) -> None:
    """Ray keeps retrying an address that does not answer (ten minutes, when tried here);
    a typo should fail at once."""
    found = re.fullmatch(r"(?:ray://)?\[?([^\]/]+?)\]?:(\d+)/?", address)
    if found is None:
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((found[1], int(found[2])), timeout=seconds).close()
    except OSError as error:
        raise ConfigurationError(f"cannot reach Ray at {address}: {error}") from None


class RayWorkers(_Windowed):
    """Tasks on a Ray cluster: ``address`` of a running one (``host:port``, ``ray://...``,
    ``auto``), or ``local`` for a Ray started in this process (the ``ray_address`` setting's
    forms). Each task takes one CPU."""

    def __init__(self, address: str = "local", window: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise InvalidParameterError(
                "Ray is not installed: pip install 'faceledger[ray]'"
            ) from None
        self._ray = ray
        if not ray.is_initialized():
            # A Ray of our own for the run, or a running cluster (which has its own settings).
            own = address == "local"
            options = {"include_dashboard": False} if own else {}
            if not own:
                _check_reachable(address)
            try:
                ray.init(address=None if own else address, log_to_driver=False, **options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise ConfigurationError(f"cannot reach Ray at {address}: {error}") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.name = f"Ray ({cpus} CPUs)"
        self.window = window or 2 * cpus
        self._task = ray.remote(num_cpus=1, max_retries=2)(_on_one_cpu)

    def _submit(self, function: Callable[..., Any], task: tuple) -> Any:
        return self._task.remote(function, *task)

    def _finished(self, running: dict[Any, Any]) -> Iterator[tuple[Any, Any]]:
        done, _ = self._ray.wait(list(running), num_returns=1)
        for ref in done:
            key = running.pop(ref)
            try:
                outcome = self._ray.get(ref)
            except self._ray.exceptions.RayError as error:
                first = (str(error).strip().splitlines() or [""])[0][:300]
                raise WorkersFailed(
                    f"a Ray task failed after its retries ({type(error).__name__}: {first})"
                ) from None
            yield key, outcome

    def _abandon(self, running: list[Any]) -> None:
        for ref in running:
            self._ray.cancel(ref)

    def put(self, value: Any) -> Any:
        """``value`` in the cluster's object store once, for many tasks to read."""
        return self._ray.put(value)

    def close(self) -> None:
        self._ray.shutdown()
