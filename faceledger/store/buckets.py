"""Token buckets: the rate limits (a client's refusals, a key's Rekognition requests, a key's
face crops viewed).

On SQLite they live in the server's memory: one server process serves a SQLite database. On
PostgreSQL, where several servers share one database, they live in the database
(``rate_buckets``), so a limit holds across every server: a client cannot multiply its
allowance by spreading requests over them. Each draw locks only its own bucket's row, never
the write lock every other write queues on.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from faceledger.store.database import Database
from faceledger.store.schema import RateBucketRow

MAX_SUBJECTS = 50_000  # buckets remembered in memory (the least recently drawn dropped)


class TokenBuckets(Protocol):
    in_memory: bool  # False: each draw is a database round trip (keep it off the event loop)

    def take(self, subject: str, count: float = 1.0, *, force: bool = False) -> float:
        """Draw ``count`` tokens: 0.0 when drawn, else the seconds until there are enough (and
        nothing is drawn). ``force`` draws them anyway, into debt if need be."""
        ...

    def available(self, subject: str) -> float: ...


def _refilled(tokens: float, last: float, now: float, rate: float, burst: float) -> float:
    return min(burst, tokens + max(0.0, now - last) * rate)


def _wait(tokens: float, count: float, rate: float) -> float:
    return (count - tokens) / rate if rate > 0 else float("inf")


class MemoryBuckets:
    in_memory = True

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _tokens(self, subject: str, now: float) -> float:
        tokens, last = self._buckets.get(subject, (self.burst, now))
        return _refilled(tokens, last, now, self.rate, self.burst)

    def take(self, subject: str, count: float = 1.0, *, force: bool = False) -> float:
        with self._lock:
            now = self.clock()
            tokens = self._tokens(subject, now)
            granted = force or tokens >= count
            self._buckets[subject] = (tokens - count if granted else tokens, now)
            self._buckets.move_to_end(subject)
            while len(self._buckets) > MAX_SUBJECTS:
                self._buckets.popitem(last=False)
            return 0.0 if granted else _wait(tokens, count, self.rate)

    def available(self, subject: str) -> float:
        with self._lock:
            return self._tokens(subject, self.clock())


class DatabaseBuckets:
    """Buckets in PostgreSQL, timed by the database's clock (servers' clocks may differ)."""

    in_memory = False

    def __init__(self, db: Database, scope: str, rate: float, burst: float) -> None:
        self.db, self.scope, self.rate, self.burst = db, scope, rate, burst

    def take(self, subject: str, count: float = 1.0, *, force: bool = False) -> float:
        with self.db.write(serialised=False) as session:
            session.execute(
                insert(RateBucketRow)
                .values(scope=self.scope, subject=subject[:255], tokens=self.burst, updated_at=0)
                .on_conflict_do_nothing()
            )
            row = session.execute(
                select(RateBucketRow)
                .where(RateBucketRow.scope == self.scope, RateBucketRow.subject == subject[:255])
                .with_for_update()
            ).scalar_one()
            now = self.db.seconds_now(session)
            last = row.updated_at or now
            tokens = _refilled(row.tokens, last, now, self.rate, self.burst)
            granted = force or tokens >= count
            row.tokens, row.updated_at = (tokens - count if granted else tokens), now
            return 0.0 if granted else _wait(tokens, count, self.rate)

    def available(self, subject: str) -> float:
        with self.db.read() as session:
            row = session.get(RateBucketRow, (self.scope, subject[:255]))
            if row is None:
                return self.burst
            now = self.db.seconds_now(session)
            return _refilled(row.tokens, row.updated_at or now, now, self.rate, self.burst)


def token_buckets(db: Database, scope: str, rate: float, burst: float) -> TokenBuckets:
    """Buckets shared by every server on the database where there can be several."""
    if db.is_postgresql:
        return DatabaseBuckets(db, scope, rate, burst)
    return MemoryBuckets(rate, burst)
