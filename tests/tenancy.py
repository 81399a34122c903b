"""The cross-workspace walker: every workspace URL that takes an object id, called by a member of workspace A
with workspace B's objects, must answer 404 and change nothing in B.

``find_cross_workspace_leaks`` is reusable with any urlconf, which is how the suite proves it catches a view
that forgets its scope (tests/crm/test_tenancy.py).
"""

import hashlib
import json
import re
from dataclasses import dataclass

from django.apps import apps
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django_scopes import scopes_disabled

from crm.models import Workspace
from tests.url_objects import URL_OBJECTS

WORKSPACE_PREFIX = "w/<slug:workspace_slug>/"
KWARG_RE = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


@dataclass(frozen=True, kw_only=True)
class WorkspaceRoute:
    route: str
    name: str
    kwargs: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Leak:
    route: str
    method: str
    url: str
    status: int
    reason: str


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def workspace_routes_with_objects(urlconf: str | None = None) -> list[WorkspaceRoute]:
    routes = []
    for route, pattern in _walk(get_resolver(urlconf).url_patterns):
        if not route.startswith(WORKSPACE_PREFIX):
            continue
        names = tuple(m["name"] for m in KWARG_RE.finditer(route) if m["name"] != "workspace_slug")
        if names:
            routes.append(WorkspaceRoute(route=route, name=pattern.name or route, kwargs=names))
    return routes


def workspace_fingerprint(workspace: Workspace) -> str:
    """A hash of every tenant-owned row of ``workspace``: any write into it changes the hash."""
    digest = hashlib.sha256()
    with scopes_disabled():
        for model in sorted(apps.get_models(), key=lambda m: m._meta.label):
            if model._meta.abstract or not any(f.name == "workspace" for f in model._meta.fields):
                continue
            rows = list(model._default_manager.filter(workspace=workspace).order_by("pk").values())
            digest.update(model._meta.label.encode())
            digest.update(json.dumps(rows, default=str, sort_keys=True).encode())
    return digest.hexdigest()


def _fill(route: str, workspace_slug: str, values: dict[str, object]) -> str:
    def replace(match: re.Match) -> str:
        name = match["name"]
        return workspace_slug if name == "workspace_slug" else str(values[name])

    return "/" + KWARG_RE.sub(replace, route)


def find_cross_workspace_leaks(
    *, client: Client, own: Workspace, foreign: Workspace, urlconf: str | None = None
) -> tuple[list[Leak], list[str]]:
    """Return (leaks, missing kwargs). ``client`` is logged in as a member (owner) of ``own`` only."""
    leaks: list[Leak] = []
    missing: set[str] = set()
    for route in workspace_routes_with_objects(urlconf):
        unknown = [name for name in route.kwargs if name not in URL_OBJECTS]
        if unknown:
            missing.update(unknown)
            continue
        values = {name: URL_OBJECTS[name](foreign) for name in route.kwargs}
        url = _fill(route.route, own.slug, values)
        before = workspace_fingerprint(foreign)
        responses = {method: getattr(client, method)(url) for method in ("get", "post")}
        changed = workspace_fingerprint(foreign) != before
        for method, response in responses.items():
            # 405 is decided by the method alone, before any lookup, so it tells nothing about B's object.
            if response.status_code not in (404, 405):
                leaks.append(
                    Leak(
                        route=route.route,
                        method=method.upper(),
                        url=url,
                        status=response.status_code,
                        reason="answered instead of 404",
                    )
                )
        if changed:
            # Which method wrote? Replay each on fresh objects (rare: only when the fast check found a write).
            for method in ("get", "post"):
                values = {name: URL_OBJECTS[name](foreign) for name in route.kwargs}
                url = _fill(route.route, own.slug, values)
                before = workspace_fingerprint(foreign)
                response = getattr(client, method)(url)
                if workspace_fingerprint(foreign) != before:
                    leaks.append(
                        Leak(
                            route=route.route,
                            method=method.upper(),
                            url=url,
                            status=response.status_code,
                            reason="changed the other workspace's data",
                        )
                    )
    return leaks, sorted(missing)
