"""POSTing JSON to other systems (ledger witnesses, job-completion webhooks) without making the
caller wait: a background thread, a few tries, failures logged and counted, never raised."""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

log = logging.getLogger("faceledger.delivery")


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    secret: bytes | None = None  # signs the body: X-Faceledger-Signature: sha256=<hex HMAC>


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class Courier:
    ATTEMPTS = 3

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._queue: queue.Queue[Delivery] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0

    def send(self, delivery: Delivery) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="courier", daemon=True)
                self._thread.start()
        self._queue.put(delivery)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout`` seconds) until everything queued was sent or given up on."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                if self._post(delivery):
                    self.delivered += 1
                else:
                    self.failed += 1
            finally:
                self._queue.task_done()

    def _post(self, delivery: Delivery) -> bool:
        headers = {"Content-Type": "application/json"}
        if delivery.secret is not None:
            headers["X-Faceledger-Signature"] = signature(delivery.secret, delivery.body)
        for attempt in range(self.ATTEMPTS):
            request = urllib.request.Request(delivery.url, delivery.body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    if 200 <= response.status < 300:
                        return True
            except (OSError, urllib.error.URLError) as error:
                if attempt == self.ATTEMPTS - 1:
                    log.warning("POST to %s failed: %s", delivery.url, error)
            time.sleep(0.2 * (attempt + 1))
        return False
