"""A video job belongs to the server running it while that server says so: another server on
the same database takes it over only when its heartbeat has run out, or at once when it was a
process on this host that no longer exists (a killed server started again)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys

from faceledger.service.video import LEASE, claimable
from faceledger.store.schema import VideoJobRow, utcnow

ME = f"{socket.gethostname()}:{os.getpid()}:aaaa"


def job(runner: str | None, beat_ago: dt.timedelta | None = dt.timedelta(0)) -> VideoJobRow:
    return VideoJobRow(
        job_id="j",
        runner=runner,
        heartbeat_at=None if beat_ago is None else utcnow() - beat_ago,
    )


def dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def test_who_may_run_a_job() -> None:
    assert claimable(job(None), ME)
    assert claimable(job(ME), ME)
    elsewhere = "other-host:4242:bbbb"
    assert not claimable(job(elsewhere), ME)  # running on another server
    assert not claimable(job(elsewhere, LEASE - dt.timedelta(seconds=5)), ME)
    assert claimable(job(elsewhere, LEASE + dt.timedelta(seconds=5)), ME)  # it went quiet
    assert claimable(job(elsewhere, None), ME)
    here = socket.gethostname()
    assert not claimable(job(f"{here}:{os.getpid()}:cccc"), ME)  # another server, alive
    assert claimable(job(f"{here}:{dead_pid()}:dddd"), ME)  # killed: no need to wait
