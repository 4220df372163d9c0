"""The console in a real browser (Playwright driving Debian's chromium) against a real server on
a loopback port: every role does its core task end to end, and every request the pages make is
recorded and must stay on that server.

Screenshots of the main pages go to a temporary folder, or to docs/screenshots/ when
FACELEDGER_SCREENSHOTS=1 (``make screenshots``), from where the README shows them.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import TEST_POLICY, lfw_image
from tests.chromium import FLAGS as CHROMIUM_FLAGS
from tests.conftest import SAMPLES, require
from tests.security.server_process import ServerProcess

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run does)"
)
FLAGS = [flag for flag in CHROMIUM_FLAGS if flag != "--headless"]  # Playwright says headless
REPO = Path(__file__).resolve().parents[2]
CASE = {"purpose": "robbery inquiry 12", "case": "CASE-2026-77"}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    buckets = tmp_path_factory.mktemp("buckets")
    clip = SAMPLES.parents[1] / "videos" / "short_hamilton_clip.mp4"
    if clip.is_file():  # a bucket video stays on disk after its job (an upload does not)
        (buckets / "clips").mkdir()
        shutil.copyfile(clip, buckets / "clips" / "clip.mp4")
    process = ServerProcess(
        tmp_path_factory.mktemp("console"), FACELEDGER_S3_BUCKET_DIR=str(buckets)
    ).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    if os.environ.get("FACELEDGER_SCREENSHOTS") == "1":
        folder = REPO / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


class Person:
    """One browser context signed in with one key; every request its pages make is kept."""

    def __init__(self, browser, server: ServerProcess, token: str) -> None:  # type: ignore[no-untyped-def]
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.requests: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.context.new_page()
        self.page.goto(server.url + "/")  # the front door leads to the console's sign-in
        assert self.page.url.endswith("/console/login")
        self.page.get_by_label("API key").fill(token)
        self.page.get_by_role("button", name="Sign in", exact=True).click()
        assert self.page.url.endswith("/console"), self.page.content()[:2000]

    def go(self, path: str) -> object:
        self.page.goto(self.server.url + path)
        assert_accessible(self.page)
        return self.page

    def shot(self, folder: Path, name: str) -> None:
        assert_accessible(self.page)
        self.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    def off_host(self) -> list[str]:
        return [
            url
            for url in self.requests
            if not url.startswith(self.server.url + "/") and not url.startswith("data:")
        ]

    def close(self) -> None:
        self.context.close()


# What a screen reader or keyboard user needs of every page: one main heading, a name for every
# control and image, and nothing that takes focus out of the document's order.
ACCESSIBILITY_PROBLEMS = """() => {
  const problems = [];
  if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
  if (!document.documentElement.lang) problems.push("no lang");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden" || el.type === "submit") continue;
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label");
    if (!named) problems.push("unlabelled " + el.outerHTML.slice(0, 80));
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.getAttribute("alt")) problems.push("image without alt");
  }
  for (const button of document.querySelectorAll("button")) {
    const named = button.textContent.trim() || button.getAttribute("aria-label");
    if (!named) problems.push("blank button");
  }
  for (const el of document.querySelectorAll("[tabindex]")) {
    if (Number(el.getAttribute("tabindex")) > 0) problems.push("positive tabindex");
  }
  return problems;
}"""


def assert_accessible(page) -> None:  # type: ignore[no-untyped-def]
    problems = page.evaluate(ACCESSIBILITY_PROBLEMS)
    assert problems == [], (page.url, problems)


def _admin_token(server: ServerProcess) -> str:
    return (server.data_dir / "admin-key.txt").read_text().strip()


def _issue(admin: Person, name: str, role: str, policy: str) -> str:
    page = admin.go("/console/keys")
    page.get_by_label("Who or what holds it").fill(name)
    page.get_by_label("Role").select_option(role)
    page.get_by_label("Use policy").select_option(policy)
    page.get_by_role("button", name="Issue", exact=True).click()
    return page.locator("#token").inner_text().strip()


def _crops(server: ServerProcess) -> int:
    with sqlite3.connect(server.data_dir / "faceledger.db") as db:
        return db.execute("SELECT count(*) FROM face_crops").fetchone()[0]


def test_every_role_does_its_core_task_in_the_browser(server, browser, shots) -> None:
    people: list[Person] = []
    try:
        _walk_through(server, browser, shots, people)
        for person in people:
            assert person.off_host() == [], person.off_host()
    finally:
        for person in people:
            person.close()


def _walk_through(server, browser, shots: Path, people: list[Person]) -> None:  # type: ignore[no-untyped-def]
    # -- admin: a collection that keeps crops, and keys for the others ---------------------
    admin = Person(browser, server, _admin_token(server))
    people.append(admin)
    page = admin.go("/console/collections")
    page.get_by_label("Collection id").fill("case-files")
    page.get_by_label("Keep a review crop of each face").select_option("on")
    models = page.get_by_label("Face model (for the collection's whole life)")
    assert models.locator("option").count() == 4  # the server's default and three models
    models.select_option("sface-int8")
    page.get_by_role("button", name="Create", exact=True).click()
    assert "kept (encrypted" in page.content()
    assert "sface-2021dec-int8/1.0" in page.content()
    tokens = {
        "operator": _issue(admin, "detective", "operator", "investigative-lead"),
        "reviewer1": _issue(admin, "reviewer one", "reviewer", "investigative-lead"),
        "reviewer2": _issue(admin, "reviewer two", "reviewer", "investigative-lead"),
        "auditor": _issue(admin, "auditor", "auditor", "photo-library"),
    }
    admin.shot(shots, "admin-keys")
    admin.go("/console/policies")
    admin.shot(shots, "admin-policies")

    # -- operator: enrol two people and search under the investigative policy ---------------
    operator = Person(browser, server, tokens["operator"])
    people.append(operator)
    assert "investigative-lead" in operator.page.content()
    for person, external_id in (("George_W_Bush", "subject-gwb"), ("Colin_Powell", "subject-cp")):
        page = operator.go("/console/collections/case-files")
        # The form asks for what the policy requires, marked required.
        assert page.get_by_label("Case or reference number (your policy requires it)").is_visible()
        page.get_by_label("Photo").set_input_files(str(lfw_image(person, 1)))
        page.get_by_label("External image id").fill(external_id)
        _state_why(page)
        page.get_by_role("button", name="Enrol", exact=True).click()
        assert "1 face(s) indexed" in page.content(), page.content()[:3000]
    operator.shot(shots, "operator-enrolled")
    assert _crops(server) == 2
    page = operator.go("/console/search")
    page.get_by_label("Collection").select_option("case-files")
    page.get_by_label("Photo (its largest face is searched)").set_input_files(
        str(lfw_image("George_W_Bush", 2))
    )
    page.get_by_label("Similarity threshold").fill("99")
    _state_why(page)
    page.get_by_role("button", name="Search", exact=True).click()
    content = page.content()
    assert "candidates, not identifications" in content and "subject-gwb" in content
    assert "unconfirmed" in content and "subject-cp" not in content
    operator.shot(shots, "operator-search")
    task_url = page.get_by_role("link", name="Follow the task").get_attribute("href")
    assert task_url and task_url.startswith("/console/review/")

    # -- two reviewers confirm, blind, with the faces side by side --------------------------
    for number, name in ((1, "reviewer1"), (2, "reviewer2")):
        reviewer = Person(browser, server, tokens[name])
        people.append(reviewer)
        page = reviewer.go("/console/review")
        assert task_url in page.content()
        page = reviewer.go(task_url)
        images = page.locator(".pair img")
        assert images.count() == 2  # the searched face and the candidate
        for i in range(2):
            assert images.nth(i).evaluate("img => img.naturalWidth") == 150
        assert "others' decisions are hidden" in page.content()
        if number == 1:
            reviewer.shot(shots, "reviewer-task")
        page.keyboard.press("c")  # the shortcut picks "confirm" and moves to the reason
        page.keyboard.type("same person: hairline, ears, nose; no contrary detail")
        page.get_by_role("button", name="Record decision", exact=True).click()
        assert "You confirmed" in page.content()
        if number == 2:
            assert "status-confirmed" in page.content()

    # -- the requester sees the outcome and is refused a decision -------------------------------
    page = operator.go(task_url)
    assert "You ran this search, so you cannot review its results" in page.content()
    assert page.locator(".pair img").count() == 0  # faces are for reviewers
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    refused = operator.context.request.post(
        server.url + task_url + "/decide",
        form={"csrf": csrf, "face_id": "x", "decision": "confirm", "reason": "my own lead"},
        headers={"Origin": server.url},
    )
    assert refused.status == 403
    # A form posted without its CSRF token, or from another site, is refused.
    for form, origin in (({"decision": "confirm"}, server.url), ({"csrf": csrf}, "http://evil")):
        forged = operator.context.request.post(
            server.url + "/console/collections/case-files/enrol",
            form=form,
            headers={"Origin": origin},
        )
        assert forged.status == 403, forged.text()

    # -- the auditor sees those events and verifies the ledger -----------------------------
    auditor = Person(browser, server, tokens["auditor"])
    people.append(auditor)
    page = auditor.go("/console/ledger?operation=ReviewDecision")
    assert page.locator("tbody tr").count() == 2
    page = auditor.go("/console/ledger?operation=ViewFaceCrops")
    # Every look at the faces: the first reviewer's before and after deciding, the second's
    # before (the task closed with that decision, and closed tasks show no faces).
    assert page.locator("tbody tr").count() == 3
    page = auditor.go("/console/ledger?after=-1")
    auditor.shot(shots, "auditor-ledger")
    page.get_by_role("button", name="Verify the whole ledger", exact=True).click()
    assert "Verified." in page.content()
    auditor.shot(shots, "auditor-verified")
    page = auditor.go("/console/ledger?outcome=refused")
    assert "ReviewDecision" in page.content() or "POST /console" in page.content()

    # -- the admin erases a subject; the crops go with the faces ------------------------------
    page = admin.go("/console/erasure")
    page.get_by_label("Identifier").fill("subject-gwb")
    page.get_by_label("Why (recorded; e.g. the request's reference)").fill("request ER-5")
    page.get_by_role("button", name="Preview", exact=True).click()
    assert re.search(r"Face crops</dt><dd>1<", page.content())
    admin.shot(shots, "admin-erasure-preview")
    page.get_by_role("button", name="Erase now", exact=True).click()
    receipt = page.locator("#receipt").inner_text()
    assert '"face_crops": [' in receipt and "subject-gwb" in receipt
    assert _crops(server) == 1  # Powell's is left

    # -- signing out ends the session ----------------------------------------------------------
    admin.page.get_by_role("button", name="Sign out", exact=True).click()
    assert admin.page.url.endswith("/console/login")
    admin.go("/console/keys")
    assert admin.page.url.endswith("/console/login")


def _state_why(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("Purpose (your policy requires it)").fill(CASE["purpose"])
    page.get_by_label("Case or reference number (your policy requires it)").fill(CASE["case"])
    page.get_by_label("Legal basis (your policy requires it)").select_option("warrant")


def test_docs_are_served_without_a_cdn(server, browser) -> None:
    context = browser.new_context()
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.goto(server.url + "/docs")
    page.wait_for_selector(".swagger-ui .info", timeout=30_000)  # Swagger UI rendered
    assert "faceledger" in page.inner_text(".swagger-ui .info")
    assert [u for u in requests if not u.startswith(server.url)] == []
    context.close()


def test_an_operator_picks_a_face_compares_and_follows_a_video_job(server, browser, shots) -> None:
    examples = require(SAMPLES / "examples")
    clip = require(SAMPLES.parents[1] / "videos" / "short_hamilton_clip.mp4")
    admin = {"Authorization": "Bearer " + _admin_token(server)}
    with httpx.Client(base_url=server.url, headers=admin, timeout=60) as api:
        assert api.post("/v1/policies", json=TEST_POLICY).status_code in (201, 409)
        assert api.post("/v1/collections", json={"collection_id": "family"}).status_code == 201
        key = api.post(
            "/v1/keys", json={"role": "operator", "name": "family album", "policy": "test-open"}
        )
    operator = Person(browser, server, key.json()["token"])
    try:
        for name in ("biden", "obama"):
            page = operator.go("/console/collections/family")
            page.get_by_label("Photo").set_input_files(str(examples / f"{name}.jpg"))
            page.get_by_label("External image id").fill(name)
            page.get_by_role("button", name="Enrol", exact=True).click()
            assert "1 face(s) indexed" in page.content()

        page = operator.go("/console/search")
        page.get_by_label("Collection").select_option("family")
        page.get_by_label("Photo (its largest face is searched)").set_input_files(
            str(examples / "two_people.jpg")
        )
        page.get_by_label("Similarity threshold").fill("80")
        page.get_by_role("button", name="Search", exact=True).click()
        first = _candidates(page)
        assert len(first) == 1 and page.locator("rect.box.other").count() == 1
        page.get_by_role("button", name="Search with face 1", exact=True).click()
        second = _candidates(page)
        assert len(second) == 1 and first != second and first | second == {"biden", "obama"}
        operator.shot(shots, "operator-picked-face")

        page = operator.go("/console/compare")
        page.get_by_label("Source photo (its largest face)").set_input_files(
            str(examples / "obama.jpg")
        )
        page.get_by_label("Target photo (every face in it)").set_input_files(
            str(examples / "two_people.jpg")
        )
        page.get_by_role("button", name="Compare", exact=True).click()
        rows = page.locator("tbody tr")
        assert rows.count() == 2
        assert [rows.nth(i).locator("td").last.inner_text() for i in range(2)] == [
            "similar",
            "below",
        ]
        operator.shot(shots, "operator-compare")

        page = operator.go("/console/video")
        page.get_by_label("Video file (MP4, MOV, MKV, WebM, AVI, GIF)").set_input_files(str(clip))
        page.get_by_role("button", name="Upload and start", exact=True).click()
        assert "/console/video/" in page.url
        page.wait_for_function(
            "() => /SUCCEEDED|FAILED/.test(document.querySelector('dl.facts dd').innerText)",
            timeout=240_000,
        )
        assert "SUCCEEDED" in page.locator("dl.facts dd").first.inner_text()
        assert page.locator("tbody tr td").first.inner_text().startswith("#")
        operator.shot(shots, "operator-video-job")
        page.get_by_role("link", name="Show each person's best-seen face").click()
        assert "no longer on disk" in page.content()  # an upload goes when its job ends

        token = {"Authorization": "Bearer " + key.json()["token"]}
        with httpx.Client(base_url=server.url, headers=token, timeout=60) as api:
            started = api.post(
                "/v1/video/jobs",
                json={"kind": "detect", "video": {"bucket": "clips", "name": "clip.mp4"}},
            )
            assert started.status_code == 202, started.text
            job_id = started.json()["job_id"]
            for _ in range(240):
                if api.get(f"/v1/video/jobs/{job_id}").json()["status"] != "IN_PROGRESS":
                    break
                time.sleep(1)
        page = operator.go(f"/console/video/{job_id}")
        people = page.locator("tbody tr").count()
        page.get_by_role("link", name="Show each person's best-seen face").click()
        images = page.locator("tbody img")
        assert people >= 1 and images.count() == people
        assert images.first.evaluate("img => img.naturalWidth") == 150
        operator.shot(shots, "operator-video-contact-sheet")
        with httpx.Client(base_url=server.url, headers=admin, timeout=60) as api:
            views = api.get("/v1/ledger/events", params={"operation": "ViewFaceCrops"}).json()
        seen = [e["event"] for e in views["events"]]
        assert any(e["parameters"].get("video_job_id") == job_id for e in seen)
        assert operator.off_host() == []
    finally:
        operator.close()


def _candidates(page) -> set[str]:  # type: ignore[no-untyped-def]
    cells = page.locator("tbody tr td strong")
    return {cells.nth(i).inner_text() for i in range(cells.count())}
