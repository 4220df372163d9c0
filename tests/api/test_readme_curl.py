"""The README's REST quick start, run as written (bash and curl) against a live server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.api.conftest import lfw_image, lfw_people
from tests.security.server_process import ServerProcess

README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart() -> str:
    text = README.read_text()
    found = re.search(
        r"<!-- rest-quickstart:begin -->\n```sh\n(.*?)```\n<!-- rest-quickstart:end -->",
        text,
        re.S,
    )
    assert found, "the README has lost its REST quick start block"
    return found.group(1)


def test_the_readmes_curl_quick_start_runs_as_written(tmp_path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (apt-get install curl; .ci/run does)")
    person = lfw_people(1)[0]
    data_dir = tmp_path / "var"
    server = ServerProcess(data_dir).start()
    try:
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", quickstart()],
            capture_output=True,
            text=True,
            timeout=300,
            env={
                **os.environ,
                "BASE": server.url,
                "DATA_DIR": str(data_dir),
                "ENROL": str(lfw_image(person, 1)),
                "PROBE": str(lfw_image(person, 2)),
            },
        )
    finally:
        server.stop()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # Each step answered; the review closed with the candidate confirmed by two people.
    assert '"external_image_id":"ada"' in run.stdout
    assert '"status":"candidate"' in run.stdout  # compare
    task = re.findall(r'\{"task_id".*?"decisions":\[.*?\]\}', run.stdout)[-1]
    outcome = json.loads(task)
    assert outcome["status"] == "closed"
    assert [c["status"] for c in outcome["candidates"]] == ["confirmed"]
    assert '"ok":true' in run.stdout  # the ledger verifies
    assert '"operation":"SearchFacesByImage"' in run.stdout
