from typing import Any

from django.http import HttpRequest
from django.urls import reverse


def ws_reverse(request_or_workspace: Any, view_name: str, **kwargs: Any) -> str:
    """Reverse a ``/w/<workspace_slug>/...`` URL for the request's (or the given) workspace."""
    workspace = getattr(request_or_workspace, "workspace", request_or_workspace)
    return reverse(view_name, kwargs={"workspace_slug": workspace.slug, **kwargs})


def is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))
