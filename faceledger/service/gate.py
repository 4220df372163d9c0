"""A cap on concurrent engine work: decoding and analysing images costs memory and CPU in
proportion to the image, so at most ``running`` requests do it at once, at most ``waiting``
more wait for a turn, and the rest are told at once to come back later (:class:`ServiceBusy`,
HTTP 503 with ``Retry-After``) instead of piling up until the machine runs out of memory.
Within a slot, a large image (over 8 MP; decoding one of 40 takes ~300 MB for a moment) also
takes the one *heavy* turn, so large images are worked on one at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from faceledger.errors import ServiceBusy
from faceledger.memory import release_free_memory


class EngineGate:
    def __init__(self, running: int, waiting: int, retry_after: int = 2) -> None:
        self.running = running
        self.waiting = waiting
        self.retry_after = retry_after
        self._slots = threading.BoundedSemaphore(running)
        self._lock = threading.Lock()
        self._admitted = 0  # running plus waiting
        self._local = threading.local()
        self._heavy = threading.Lock()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the running slots; re-entrant within a thread."""
        if getattr(self._local, "held", False):
            yield
            return
        with self._lock:
            if self._admitted >= self.running + self.waiting:
                raise ServiceBusy(
                    f"the server is busy ({self.running} images in work, {self.waiting} "
                    f"waiting); try again in {self.retry_after} s",
                    retry_after=self.retry_after,
                )
            self._admitted += 1
        try:
            with self._slots:
                self._local.held, self._local.heavy = True, False
                try:
                    yield
                finally:
                    self._local.held = False
                    if self._local.heavy:
                        self._local.heavy = False
                        self._heavy.release()
                        release_free_memory()
        finally:
            with self._lock:
                self._admitted -= 1

    def heavy(self) -> None:
        """Within a slot: wait for the heavy turn, held until the slot ends."""
        if getattr(self._local, "held", False) and not self._local.heavy:
            self._heavy.acquire()
            self._local.heavy = True
