"""Console sessions and forms, tried the way someone would break them: stolen or stale cookies,
revoked keys, forged posts, framing, caching, and guessing keys at the sign-in form."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest
from fastapi.testclient import TestClient

from faceledger.api import create_app
from faceledger.config import Settings
from faceledger.service.context import Services

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _console(data_dir, engine, **settings):  # type: ignore[no-untyped-def]
    config = Settings(data_dir=data_dir, refusal_burst=1000, **settings)
    services = Services.open(config, engine=engine)
    client = TestClient(create_app(config, services), base_url="https://console.test")
    return services, client


@pytest.fixture()
def console(tmp_path, shared_engine):
    services, client = _console(tmp_path, shared_engine)
    with client:
        client.admin_token = (tmp_path / "admin-key.txt").read_text().strip()
        yield client
    services.close()


def _sign_in(client: TestClient, token: str) -> str:
    response = client.post("/console/login", data={"api_key": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return CSRF.search(client.get("/console").text)[1]


def _events(client: TestClient, operation: str) -> list[dict]:
    headers = {"Authorization": "Bearer " + client.admin_token}
    found = client.get(f"/v1/ledger/events?operation={operation}", headers=headers).json()
    return [item["event"] for item in found["events"]]


def test_the_cookie_is_http_only_strict_and_secure_over_tls(console) -> None:
    response = console.post(
        "/console/login", data={"api_key": console.admin_token}, follow_redirects=False
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    assert console.admin_token.split(".")[1] not in cookie  # the key itself never goes back
    assert _events(console, "ConsoleSignIn")


def test_pages_are_not_cached_framed_or_open_to_other_scripts(console) -> None:
    _sign_in(console, console.admin_token)
    headers = console.get("/console/keys").headers
    assert headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_the_database_holds_no_usable_session_token(console, tmp_path) -> None:
    _sign_in(console, console.admin_token)
    token = console.cookies.get("faceledger_session")
    with sqlite3.connect(tmp_path / "faceledger.db") as db:
        stored = db.execute("SELECT token_sha256 FROM console_sessions").fetchone()[0]
    assert token and stored != token
    console.cookies.clear()
    console.cookies.set("faceledger_session", stored, domain="console.test")
    assert console.get("/console/keys", follow_redirects=False).status_code == 303


def test_a_form_without_its_csrf_token_or_from_another_site_is_refused(console) -> None:
    csrf = _sign_in(console, console.admin_token)
    attempts = [
        ({"name": "x", "role": "operator"}, {}),  # no token
        ({"csrf": "guess", "name": "x", "role": "operator"}, {}),  # a wrong one
        ({"csrf": csrf, "name": "x", "role": "operator"}, {"Origin": "https://evil.test"}),
        ({"csrf": csrf, "name": "x", "role": "operator"}, {"Origin": "null"}),
        ({"csrf": csrf, "name": "x", "role": "operator"}, {"Sec-Fetch-Site": "cross-site"}),
    ]
    for form, headers in attempts:
        response = console.post("/console/keys", data=form, headers=headers)
        assert response.status_code == 403, (form, headers)
        assert "<h1>" in response.text  # a page for a person, not JSON
    keys = console.get("/console/keys").text
    assert ">x<" not in keys  # no key was issued
    ok = console.post("/console/keys", data={"csrf": csrf, "name": "x", "role": "operator"})
    assert ok.status_code == 200 and 'id="token"' in ok.text


def test_revoking_a_key_ends_its_sessions_at_once(console) -> None:
    csrf = _sign_in(console, console.admin_token)
    issued = console.post(
        "/console/keys", data={"csrf": csrf, "name": "auditor", "role": "auditor"}
    )
    token = re.search(r'<code id="token">([^<]+)</code>', issued.text)[1]
    auditor = TestClient(console.app, base_url="https://console.test")
    _sign_in(auditor, token)
    assert auditor.get("/console/ledger").status_code == 200
    key_id = token.split(".")[0]
    revoked = console.post(f"/console/keys/{key_id}/revoke", data={"csrf": csrf})
    assert revoked.status_code in (200, 303)
    assert auditor.get("/console/ledger", follow_redirects=False).status_code == 303


def test_an_idle_session_ends(tmp_path, shared_engine) -> None:
    services, client = _console(tmp_path, shared_engine, console_idle_minutes=0.05)  # 3 s
    with client:
        _sign_in(client, (tmp_path / "admin-key.txt").read_text().strip())
        assert client.get("/console/keys", follow_redirects=False).status_code == 200
        time.sleep(3.5)
        assert client.get("/console/keys", follow_redirects=False).status_code == 303
    services.close()


def test_wrong_keys_at_the_sign_in_form_are_refused_and_recorded(console) -> None:
    for guess in ("", "flk_0000000000000000.nope", "x" * 5000):
        response = console.post("/console/login", data={"api_key": guess})
        assert response.status_code == 401
        assert "not valid" in response.text or "required" in response.text
    console.app.state.services.refusals.flush(everything=True)
    refused = [e for e in _events(console, "ConsoleSignIn") if e["outcome"] == "refused"]
    refused += [e for e in _events(console, "RepeatedRefusals")]
    assert refused


def test_each_role_is_refused_what_is_not_its_own(console) -> None:
    csrf = _sign_in(console, console.admin_token)
    issued = console.post(
        "/console/keys", data={"csrf": csrf, "name": "reviewer", "role": "reviewer"}
    )
    token = re.search(r'<code id="token">([^<]+)</code>', issued.text)[1]
    reviewer = TestClient(console.app, base_url="https://console.test")
    reviewer_csrf = _sign_in(reviewer, token)
    for path in ("/console/keys", "/console/ledger", "/console/erasure", "/console/video"):
        assert reviewer.get(path).status_code == 403, path
    response = reviewer.post(
        "/console/erasure",
        data={"csrf": reviewer_csrf, "kind": "user", "subject": "anyone"},
    )
    assert response.status_code == 403
    # The admin does not search faces (separation of duties), in the console as in the API.
    assert console.get("/console/search").status_code == 200  # the page says it is not allowed
    searched = console.post(
        "/console/search",
        data={"csrf": csrf, "collection_id": "c", "image_b64": "AAAA"},
    )
    assert searched.status_code == 403


def test_the_admin_sets_retention_records_consent_and_runs_retention(console) -> None:
    csrf = _sign_in(console, console.admin_token)
    created = console.post(
        "/console/collections",
        data={"csrf": csrf, "collection_id": "album", "keep_face_crops": "off"},
    )
    assert created.status_code == 200 and "not kept" in created.text
    set_days = console.post(
        "/console/collections/album/retention", data={"csrf": csrf, "days": "30"}
    )
    assert "deleted 30 days after their last use" in set_days.text
    recorded = console.post(
        "/console/collections/album/consents",
        data={
            "csrf": csrf,
            "subject_kind": "external_image",
            "subject": "ada",
            "consented_by": "Ada L.",
            "document_reference": "cabinet 3, folder 12",
        },
    )
    assert "cabinet 3, folder 12" in recorded.text and "Withdraw" in recorded.text
    consent_id = re.search(r"/console/consents/([0-9a-f-]+)/withdraw", recorded.text)[1]
    withdrawn = console.post(f"/console/consents/{consent_id}/withdraw", data={"csrf": csrf})
    assert "withdrawn " in withdrawn.text
    ran = console.post("/console/retention/run", data={"csrf": csrf})
    assert "Retention ran: 0 face(s)" in ran.text
    for operation in ("SetRetention", "RecordConsent", "WithdrawConsent", "RetentionRun"):
        assert _events(console, operation), operation


def test_the_cookie_is_secure_behind_a_trusted_tls_proxy_only(tmp_path, shared_engine) -> None:
    services, _ = _console(tmp_path, shared_engine, trusted_proxies="127.0.0.0/8")
    app = create_app(services.settings, services)
    for peer, secure in (("127.0.0.1", True), ("203.0.113.9", False)):
        client = TestClient(app, base_url="http://console.test", client=(peer, 5000))
        with client:
            token = (tmp_path / "admin-key.txt").read_text().strip()
            response = client.post(
                "/console/login",
                data={"api_key": token},
                headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"},
                follow_redirects=False,
            )
        assert response.status_code == 303
        assert ("secure" in response.headers["set-cookie"].lower()) is secure, peer
    services.close()
