"""The console's cost: how long its main pages take to load in a real browser (Debian's
chromium driven by Playwright, against `faceledger serve` on loopback), and how much storage a
review crop adds per face.

A fresh data directory gets a collection that keeps crops, ``--faces`` LFW faces enrolled
through the API under an open test policy, an investigative search with a review task, and a
key for each role. Each page is then loaded ``--loads`` times in one browser context; the
figures are the navigation's time to the response's end (server time plus transfer) and to
the load event, median and 90th percentile, in milliseconds.

    python benchmarks/console.py --faces 500 --loads 20
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from faceledger.config import Settings
from tests.api.conftest import TEST_POLICY
from tests.security.server_process import ServerProcess, post_photo

TIMING = """() => {
  const [n] = performance.getEntriesByType("navigation");
  return [n.responseEnd - n.requestStart, n.loadEventEnd - n.startTime];
}"""
CASE = {"purpose": "benchmark", "case": "B-1", "legal_basis": "warrant"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=500)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    lfw = Settings().lfw_dir / "images"
    people = sorted(p for p in lfw.iterdir() if (p / f"{p.name}_0002.jpg").exists())
    with tempfile.TemporaryDirectory() as folder:
        # The crop allowance is per minute; the benchmark looks at more than a person would.
        server = ServerProcess(
            Path(folder) / "data", FACELEDGER_CROP_VIEWS_PER_MINUTE="1000000"
        ).start()
        try:
            tokens, task_id = _prepare(server, lfw, people, args.faces)
            crop_bytes = _crop_bytes(server.data_dir)
            pages = {
                "operator: collection (faces listed)": ("operator", "/console/collections/bench"),
                "operator: collection with 48 crops": (
                    "operator",
                    "/console/collections/bench?show=1",
                ),
                "reviewer: queue": ("reviewer", "/console/review"),
                "reviewer: task with crops": ("reviewer", f"/console/review/{task_id}"),
                "auditor: ledger, latest 50 events": ("auditor", "/console/ledger?after=-1"),
                "admin: keys": ("admin", "/console/keys"),
                "admin: policies": ("admin", "/console/policies"),
            }
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                rows = [
                    (name, *_load(browser, server.url, tokens[role], path, args.loads))
                    for name, (role, path) in pages.items()
                ]
                browser.close()
        finally:
            server.stop()
    print(f"\n{args.faces} faces enrolled; each page loaded {args.loads} times (ms)\n")
    print("| page | response p50 | response p90 | load p50 | load p90 |\n|---|---|---|---|---|")
    for name, response, load in rows:
        print(
            f"| {name} | {_q(response, 50):.1f} | {_q(response, 90):.1f} "
            f"| {_q(load, 50):.1f} | {_q(load, 90):.1f} |"
        )
    mean = statistics.mean(crop_bytes)
    print(
        f"\nreview crop per face: {mean:.0f} bytes sealed on average "
        f"(min {min(crop_bytes)}, max {max(crop_bytes)}; 150x150 JPEG q85 + 28 bytes of "
        f"nonce and tag), {mean * 1e6 / 2**30:.2f} GiB per million faces"
    )


def _prepare(server: ServerProcess, lfw: Path, people: list[Path], faces: int):  # type: ignore[no-untyped-def]
    admin = {"Authorization": "Bearer " + (server.data_dir / "admin-key.txt").read_text().strip()}
    with httpx.Client(base_url=server.url, timeout=120) as client:
        client.post("/v1/policies", json=TEST_POLICY, headers=admin).raise_for_status()
        client.post(
            "/v1/collections",
            json={"collection_id": "bench", "keep_face_crops": True},
            headers=admin,
        ).raise_for_status()

        def key(role: str, policy: str) -> str:
            issued = client.post(
                "/v1/keys", json={"role": role, "name": role, "policy": policy}, headers=admin
            )
            issued.raise_for_status()
            return issued.json()["token"]

        tokens = {
            "admin": admin["Authorization"].split()[1],
            "operator": key("operator", "investigative-lead"),
            "reviewer": key("reviewer", "investigative-lead"),
            "auditor": key("auditor", "photo-library"),
        }
        enrol = {"Authorization": "Bearer " + key("operator", "test-open")}
        for person in people[:faces]:
            photo = person / f"{person.name}_0001.jpg"
            post_photo(
                client,
                "/v1/collections/bench/faces",
                photo,
                enrol,
                external_image_id=person.name,
                max_faces="1",
            )
        searched = post_photo(
            client,
            "/v1/collections/bench/search",
            people[0] / f"{people[0].name}_0002.jpg",
            {"Authorization": "Bearer " + tokens["operator"]},
            threshold="99",
            **CASE,
        )
        searched.raise_for_status()
        return tokens, searched.json()["governance"]["review"]["task_id"]


def _crop_bytes(data_dir: Path) -> list[int]:
    with sqlite3.connect(data_dir / "faceledger.db") as db:
        return [row[0] for row in db.execute("SELECT length(sealed) FROM face_crops")]


def _load(browser, url: str, token: str, path: str, loads: int):  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + "/console/login")
    page.fill("#api_key", token)
    page.click("button[type=submit]")
    responses, finished = [], []
    for _ in range(loads):
        page.goto(url + path, wait_until="load")
        response, load = page.evaluate(TIMING)
        responses.append(response)
        finished.append(load)
    context.close()
    return responses, finished


def _q(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
