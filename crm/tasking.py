"""Helpers for Celery tasks: every task takes ``workspace_id`` and opens that workspace's scope itself."""

from collections.abc import Iterator
from contextlib import contextmanager

from django_scopes import scope

from crm.models import Workspace


@contextmanager
def workspace_scope(workspace_id: int) -> Iterator[Workspace | None]:
    """Yield the workspace inside its scope, or None (and no scope) when it has been deleted meanwhile."""
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        yield None
        return
    with scope(workspace=workspace):
        yield workspace
