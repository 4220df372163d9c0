"""A video job on a database shared by several servers is run by one of them: a server
starting beside one that is running a job leaves it alone; a server that stops hands its job
back and another runs it to the end; a job whose server went quiet elsewhere (no heartbeat for
the lease) is taken over. Two services on one PostgreSQL database play the two servers."""

from __future__ import annotations

import time

from sqlalchemy import text

from faceledger.config import Settings
from faceledger.service import video
from faceledger.service.context import Services
from tests.conftest import DATA, require
from tests.video.test_video_cli_and_restart import LOCAL
from tests.video.test_video_jobs import FACENET


def wait_for(services: Services, job_id: str, done, seconds: float = 180):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        job = video.get_job(services, LOCAL, job_id).job
        if done(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def holder(services: Services, job_id: str) -> str | None:
    with services.db.read() as session:
        return session.execute(
            text("SELECT runner FROM video_jobs WHERE job_id = :j"), {"j": job_id}
        ).scalar()


def test_one_server_runs_a_job_and_another_takes_it_over(
    postgresql_server, shared_engine, tmp_path
) -> None:
    clip = require(DATA / "videos" / FACENET)
    url = postgresql_server.new_database()
    first = Services.open(Settings(data_dir=tmp_path / "a", database_url=url), shared_engine)
    second = Services.open(Settings(data_dir=tmp_path / "b", database_url=url), shared_engine)
    try:
        job_id = video.start_job(first, LOCAL, "detect", video.VideoSource(clip), sample_fps=None)
        wait_for(first, job_id, lambda job: job.frames_done > 0)
        assert holder(second, job_id) == first.runner_id
        assert video.resume_unfinished(second) == 0  # it is running elsewhere: left alone

        first.close()  # stops at the next frames and hands the job back, unfinished
        assert video.get_job(second, LOCAL, job_id).job.status == "IN_PROGRESS"
        assert holder(second, job_id) is None
        assert video.resume_unfinished(second) == 1
        job = wait_for(second, job_id, lambda job: job.status != "IN_PROGRESS")
        assert job.status == "SUCCEEDED" and job.frames_done > 100
        finished = video.get_job(second, LOCAL, job_id)
        assert finished.results
        with second.db.read() as session:
            events = session.execute(
                text("SELECT count(*) FROM ledger_events WHERE operation = 'VideoJobFinished'")
            ).scalar()
        assert events == 1  # run to the end once

        # A job whose server, on another host, stopped writing its heartbeat 3 minutes ago.
        quiet = video.start_job(second, LOCAL, "detect", video.VideoSource(clip), sample_fps=1)
        wait_for(second, quiet, lambda job: job.status != "IN_PROGRESS")
        with second.db.write() as session:
            session.execute(
                text(
                    "UPDATE video_jobs SET status = 'IN_PROGRESS', runner = 'elsewhere:1:ab', "
                    "heartbeat_at = now() - interval '3 minutes' WHERE job_id = :j"
                ),
                {"j": quiet},
            )
        assert video.resume_unfinished(second) == 1
        job = wait_for(second, quiet, lambda job: job.status != "IN_PROGRESS")
        assert job.status == "SUCCEEDED"
        assert holder(second, quiet) == second.runner_id
    finally:
        second.close()
