"""A real Ray cluster for the tests that hand work to one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.api.conftest import shared_engine  # noqa: F401  (a fixture)
from tests.rekognition.conftest import free_port

RAY = Path(sys.executable).parent / "ray"


@pytest.fixture
def ray_cluster(monkeypatch):
    # The cluster requires its token (the run's RAY_AUTH_TOKEN: tests/conftest.py) and the
    # client must send it: Ray's client side does only in token mode.
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    pytest.importorskip("ray", reason="the Ray tests need Ray: pip install -e '.[test]'")
    port = free_port()
    folder = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    started = subprocess.run(
        [
            str(RAY),
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={folder}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(RAY), "stop", "--force"], capture_output=True, env=env, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)
