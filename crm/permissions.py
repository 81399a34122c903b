"""Who may do what inside a workspace.

One table maps each capability to the roles that hold it. Views check a capability with
``@requires(...)``; templates read ``can.<capability>`` (from the context processor) only to hide what the
view would refuse anyway.
"""

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from crm.models import Role


class Capability(StrEnum):
    VIEW = "view"
    EDIT_CUSTOMERS = "edit_customers"
    MANAGE_SEGMENTS = "manage_segments"
    MANAGE_CAMPAIGNS = "manage_campaigns"
    WORK_TICKETS = "work_tickets"
    MANAGE_SUPPORT = "manage_support"
    MANAGE_INTEGRATIONS = "manage_integrations"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_WORKSPACE = "manage_workspace"
    EXPORT_DATA = "export_data"
    ERASE_CUSTOMERS = "erase_customers"


ALL_ROLES = frozenset(Role)
CAPABILITY_ROLES: dict[Capability, frozenset[str]] = {
    Capability.VIEW: ALL_ROLES,
    Capability.EDIT_CUSTOMERS: frozenset({Role.OWNER, Role.ADMIN, Role.MARKETER, Role.SUPPORT}),
    Capability.MANAGE_SEGMENTS: frozenset({Role.OWNER, Role.ADMIN, Role.MARKETER}),
    Capability.MANAGE_CAMPAIGNS: frozenset({Role.OWNER, Role.ADMIN, Role.MARKETER}),
    Capability.WORK_TICKETS: frozenset({Role.OWNER, Role.ADMIN, Role.SUPPORT}),
    Capability.MANAGE_SUPPORT: frozenset({Role.OWNER, Role.ADMIN}),
    Capability.MANAGE_INTEGRATIONS: frozenset({Role.OWNER, Role.ADMIN}),
    Capability.MANAGE_MEMBERS: frozenset({Role.OWNER, Role.ADMIN}),
    Capability.MANAGE_WORKSPACE: frozenset({Role.OWNER, Role.ADMIN}),
    Capability.EXPORT_DATA: frozenset({Role.OWNER, Role.ADMIN, Role.MARKETER}),
    Capability.ERASE_CUSTOMERS: frozenset({Role.OWNER, Role.ADMIN}),
}


def role_can(role: str, capability: Capability) -> bool:
    return role in CAPABILITY_ROLES[capability]


def capabilities_for(role: str) -> dict[str, bool]:
    return {capability.value: role in roles for capability, roles in CAPABILITY_ROLES.items()}


def requires(capability: Capability) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Refuse (403) a workspace view to members whose role lacks ``capability``."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            membership = getattr(request, "membership", None)
            if membership is None or not role_can(membership.role, capability):
                raise PermissionDenied(f"Your role cannot {capability.value.replace('_', ' ')}.")
            return view(request, *args, **kwargs)

        wrapper.required_capability = capability  # type: ignore[attr-defined]
        return wrapper

    return decorator
