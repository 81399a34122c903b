from django.http import HttpRequest

from crm.permissions import capabilities_for
from crm.selectors import workspaces_for_user


def workspace(request: HttpRequest) -> dict:
    current = getattr(request, "workspace", None)
    membership = getattr(request, "membership", None)
    context: dict = {"workspace": current, "membership": membership, "can": {}}
    if membership is not None:
        context["can"] = capabilities_for(membership.role)
    if current is not None and request.user.is_authenticated:
        context["my_workspaces"] = workspaces_for_user(user=request.user)
    return context
