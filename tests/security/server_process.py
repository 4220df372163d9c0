"""A real `faceledger serve` in its own process, for tests that kill it or measure it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api.conftest import TEST_POLICY
from tests.rekognition.conftest import free_port

CLI = Path(sys.executable).parent / "faceledger"


def cli(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=check,
        env={**os.environ, "FACELEDGER_DATA_DIR": str(data_dir)},
    )


def prepare(data_dir: Path, collection: str) -> str:
    """A collection, the permissive test policy and an operator key under it (its token)."""
    policy = data_dir.parent / f"{data_dir.name}-policy.json"
    policy.write_text(json.dumps(TEST_POLICY))
    cli(data_dir, "policies", "set", str(policy))
    cli(data_dir, "collections", "create", collection)
    created = cli(
        data_dir,
        "keys",
        "create",
        "--role",
        "operator",
        "--name",
        "t",
        "--policy",
        TEST_POLICY["name"],
        "--json",
    )
    return json.loads(created.stdout)["token"]


def list_faces(url: str, headers: dict[str, str], collection: str) -> dict[str, str]:
    """Every face of a collection through the API, page by page: face id -> external id."""
    listed: dict[str, str] = {}
    token = None
    while True:
        params = {"max_results": 4096, **({"next_token": token} if token else {})}
        page = httpx.get(
            f"{url}/v1/collections/{collection}/faces", params=params, headers=headers, timeout=60
        ).json()
        listed.update({f["face_id"]: f["external_image_id"] for f in page["faces"]})
        token = page.get("next_token")
        if not token:
            return listed


def post_photo(
    client: httpx.Client, url: str, path: Path, headers: dict[str, str], **data: str
) -> httpx.Response:
    with path.open("rb") as handle:
        return client.post(url, files={"image": handle}, data=data, headers=headers)


class ServerProcess:
    def __init__(self, data_dir: Path, *serve_args: str, **env: str) -> None:
        """``serve_args``: more options of `faceledger serve` (e.g. ``--workers``)."""
        self.data_dir, self.serve_args = data_dir, serve_args
        self.port = free_port()
        self.env = {**os.environ, "FACELEDGER_DATA_DIR": str(data_dir), **env}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> ServerProcess:
        self.process = subprocess.Popen(
            [str(CLI), "serve", "--port", str(self.port), *self.serve_args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)

    def kill(self) -> None:
        """kill -9: no shutdown, no flush, no goodbye."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def peak_rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")
