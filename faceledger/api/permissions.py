"""Which permission each route needs, in one table, checked as soon as the caller is known and
before the body is read; a route missing here is refused (fail closed). The README's route
table states the same (the roles holding each permission, see ``service.auth.PERMISSIONS``)
and a test walks every route with every role against it. The services check again: this is
the first of two locks, not the only one."""

from __future__ import annotations

import re

ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/collections"): "collections:manage",
    ("GET", "/v1/collections"): "collections:read",
    ("GET", "/v1/collections/{collection_id}"): "collections:read",
    ("DELETE", "/v1/collections/{collection_id}"): "collections:manage",
    ("POST", "/v1/collections/{collection_id}/faces"): "faces:write",
    ("GET", "/v1/collections/{collection_id}/faces"): "faces:read",
    ("POST", "/v1/collections/{collection_id}/faces/delete"): "faces:write",
    ("POST", "/v1/collections/{collection_id}/faces/crops"): "faces:read",
    ("PUT", "/v1/collections/{collection_id}/face-crops"): "collections:manage",
    ("POST", "/v1/collections/{collection_id}/search"): "faces:search",
    ("POST", "/v1/collections/{collection_id}/faces/{face_id}/search"): "faces:search",
    ("POST", "/v1/compare"): "faces:compare",
    ("POST", "/v1/detect"): "faces:detect",
    ("POST", "/v1/collections/{collection_id}/users"): "users:write",
    ("GET", "/v1/collections/{collection_id}/users"): "users:read",
    ("DELETE", "/v1/collections/{collection_id}/users/{user_id}"): "users:write",
    ("POST", "/v1/collections/{collection_id}/users/{user_id}/faces"): "users:write",
    ("POST", "/v1/collections/{collection_id}/users/{user_id}/faces/delete"): "users:write",
    ("POST", "/v1/collections/{collection_id}/users/search"): "faces:search",
    ("POST", "/v1/keys"): "keys:manage",
    ("GET", "/v1/keys"): "keys:manage",
    ("PUT", "/v1/keys/{key_id}/policy"): "keys:manage",
    ("DELETE", "/v1/keys/{key_id}"): "keys:manage",
    ("GET", "/v1/ledger/verify"): "ledger:read",
    ("GET", "/v1/ledger/head"): "ledger:read",
    ("GET", "/v1/ledger/events"): "ledger:read",
    ("GET", "/v1/ledger/public-key"): "ledger:read",
    ("POST", "/v1/evaluation/compare"): "evaluation:run",
    ("GET", "/v1/evaluation/reports/latest"): "evaluation:read",
    ("GET", "/v1/policies"): "collections:read",
    ("GET", "/v1/policies/{name}"): "collections:read",
    ("POST", "/v1/policies"): "policies:manage",
    ("PUT", "/v1/policies/{name}"): "policies:manage",
    ("DELETE", "/v1/policies/{name}"): "policies:manage",
    ("POST", "/v1/collections/{collection_id}/consents"): "consent:manage",
    ("GET", "/v1/collections/{collection_id}/consents"): "consent:manage",
    ("DELETE", "/v1/consents/{consent_id}"): "consent:manage",
    ("POST", "/v1/erasure"): "erasure:run",
    ("PUT", "/v1/collections/{collection_id}/retention"): "collections:manage",
    ("POST", "/v1/retention/run"): "retention:run",
    ("GET", "/v1/reports/accountability"): "reports:read",
    ("GET", "/v1/reviews"): "review:read",
    ("GET", "/v1/reviews/{task_id}"): "review:read",
    ("GET", "/v1/reviews/{task_id}/crops"): "review:decide",
    ("POST", "/v1/reviews/{task_id}/decisions"): "review:decide",
    ("POST", "/v1/videos"): "faces:detect",
    ("POST", "/v1/watches"): "faces:search",
    ("GET", "/v1/watches"): "faces:search",
    ("GET", "/v1/watches/{watch_id}"): "faces:search",
    ("DELETE", "/v1/watches/{watch_id}"): "faces:search",
    ("GET", "/v1/watches/{watch_id}/alerts"): "faces:search",
    ("POST", "/v1/video/jobs"): "faces:detect",
    ("GET", "/v1/video/jobs/{job_id}"): "faces:read",
    ("POST", "/v1/video/jobs/{job_id}/cancel"): "faces:read",
}


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)) + "$")


# Literal segments win over parameters (".../users/search" is not the user "search").
_MATCHERS = sorted(
    ((method, _pattern(template), permission) for (method, template), permission in ROUTES.items()),
    key=lambda item: item[1].pattern.count("[^/]+"),
)


def permission_for(method: str, path: str) -> str | None:
    """The permission the route serving ``path`` needs; None for a path not in the table."""
    method = method.upper()
    for route_method, pattern, permission in _MATCHERS:
        if route_method == method and pattern.match(path):
            return permission
    return None
