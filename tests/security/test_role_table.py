"""The README's route table is what the server enforces: every route, every role (finding 9).
A role the table lists is never refused for its role; a role it does not list always is, before
the body is read (so an empty body is enough to ask)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from faceledger.api.permissions import ROUTES

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(GET|POST|PUT|DELETE) (/v1/[^`]*)` \|.*\| ([a-z, ]+) \|$")
ROLES = ("admin", "operator", "reviewer", "auditor")
SAMPLE = {
    "collection_id": "no-such-collection",
    "face_id": "00000000-0000-4000-8000-000000000000",
    "user_id": "u",
    "key_id": "flk_0000000000000000",
    "name": "no-such-policy",
    "consent_id": "00000000-0000-4000-8000-000000000000",
    "task_id": "00000000-0000-4000-8000-000000000000",
    "job_id": "00000000-0000-4000-8000-000000000000",
    "watch_id": "00000000-0000-4000-8000-000000000000",
}


def readme_table() -> dict[tuple[str, str], set[str]]:
    rows = {}
    for line in README.read_text().splitlines():
        match = ROW.match(line.strip())
        if match:
            rows[(match[1], match[2])] = {r.strip() for r in match[3].split(",")}
    return rows


def test_the_readme_lists_every_route_once() -> None:
    table = readme_table()
    assert set(table) == set(ROUTES)
    for roles in table.values():
        assert roles <= set(ROLES)


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES))
def test_each_role_gets_what_the_readme_says(api, method, path) -> None:
    allowed = readme_table()[(method, path)]
    keys = {
        "admin": api.admin,
        "operator": api.operator,
        "auditor": api.auditor,
        "reviewer": api.reviewer if hasattr(api, "reviewer") else api.key("reviewer"),
    }
    api.reviewer = keys["reviewer"]
    url = path.format(**SAMPLE)
    for role in ROLES:
        kwargs = {"json": {}} if method in ("POST", "PUT") else {}
        response = api.client.request(method, url, headers=keys[role], **kwargs)
        body = response.json() if response.content else None
        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
        if role in allowed:
            assert code != "PERMISSION_DENIED", (role, method, path, response.text)
            assert response.status_code != 401
        else:
            assert response.status_code == 403, (role, method, path, response.text)
            assert code == "PERMISSION_DENIED"


def test_a_route_not_in_the_table_is_refused(api) -> None:
    from faceledger.api import permissions

    assert permissions.permission_for("GET", "/v1/not-a-route") is None
