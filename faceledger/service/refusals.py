"""Refused attempts on the ledger, at a cost the refuser cannot grow.

Every field that comes from the request is bounded (long values cut, with the SHA-256 of the
whole kept), and repeats are aggregated: the first refusal of a kind from one source (a client
address, or a key where the service has no address) in a minute is recorded as it happens, with
its details; the rest of that minute become one event with their count and a few samples,
written when the minute is over (by the next refusal, the server's periodic flush, or at close).
A flood of refusals therefore adds a few events a minute, not one per request.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from faceledger.governance.ledger import Event

REFUSAL_KINDS = ("credentials", "role", "policy", "rule", "throttled")
FIELD_LIMIT = 200  # characters kept of a request-supplied value
SAMPLES = 5  # distinct operations and key ids kept in an aggregate
MAX_OPEN = 10_000  # open (source, kind, minute) aggregates before all are written


def bounded(value: str, limit: int = FIELD_LIMIT) -> str:
    """``value`` if short; else its start and the SHA-256 of the whole (never unbounded)."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{value[:limit]}...[{len(value)} chars, sha256 {digest}]"


@dataclass(frozen=True)
class Refusal:
    key_id: str  # as claimed: never a secret
    role: str
    operation: str
    reason: str
    kind: str = "credentials"
    address: str | None = None

    @property
    def source(self) -> str:
        return self.address or f"key:{self.key_id}"

    def event(self) -> Event:
        results: dict[str, object] = {"reason": bounded(self.reason, 500), "kind": self.kind}
        if self.address:
            results["address"] = bounded(self.address, 64)
        results["count"] = 1
        return Event(
            operation=bounded(self.operation, 64),
            actor_key_id=bounded(self.key_id or "anonymous", 64),
            actor_role=self.role,
            outcome="refused",
            results=results,
        )


@dataclass
class _Repeats:
    first: Refusal
    count: int = 0
    operations: set[str] = field(default_factory=set)
    key_ids: set[str] = field(default_factory=set)

    def add(self, refusal: Refusal) -> None:
        self.count += 1
        if len(self.operations) < SAMPLES:
            self.operations.add(bounded(refusal.operation, 64))
        if len(self.key_ids) < SAMPLES:
            self.key_ids.add(bounded(refusal.key_id or "anonymous", 64))

    def event(self, minute: int) -> Event:
        return Event(
            operation="RepeatedRefusals",
            actor_key_id=bounded(self.first.key_id or "anonymous", 64),
            actor_role=self.first.role,
            outcome="refused",
            results={
                "kind": self.first.kind,
                "source": bounded(self.first.source, 80),
                "minute": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(minute * 60)),
                "count": self.count,
                "operations": sorted(self.operations),
                "key_ids": sorted(self.key_ids),
                "reason": bounded(self.first.reason, 500),
            },
        )


class RefusalLog:
    """Writes refusals through ``write`` (which appends events to the ledger)."""

    def __init__(
        self, write: Callable[[list[Event]], None], clock: Callable[[], float] = time.time
    ) -> None:
        self._write = write
        self._clock = clock
        self._open: dict[tuple[str, str, int], _Repeats] = {}
        self._lock = threading.Lock()

    def record(self, refusal: Refusal) -> None:
        if refusal.kind not in REFUSAL_KINDS:
            raise ValueError(f"unknown refusal kind {refusal.kind!r}")
        minute = int(self._clock() // 60)
        key = (refusal.source, refusal.kind, minute)
        with self._lock:
            events = self._take(lambda m: m < minute or len(self._open) >= MAX_OPEN)
            repeats = self._open.get(key)
            if repeats is None:
                self._open[key] = _Repeats(refusal)
                events.append(refusal.event())
            else:
                repeats.add(refusal)
        if events:
            self._write(events)

    def flush(self, everything: bool = False) -> int:
        """Write the aggregates of minutes that are over (all of them with ``everything``)."""
        minute = int(self._clock() // 60)
        with self._lock:
            events = self._take(lambda m: everything or m < minute)
        if events:
            self._write(events)
        return len(events)

    def _take(self, due: Callable[[int], bool]) -> list[Event]:
        events = []
        for key in [k for k in self._open if due(k[2])]:
            repeats = self._open.pop(key)
            if repeats.count:
                events.append(repeats.event(key[2]))
        return events
