from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django_scopes import scope, scopes_disabled

from crm.models import Membership, Workspace


class WorkspaceMiddleware:
    """Resolve ``/w/<workspace_slug>/...``, check membership and run the request inside that workspace's scope.

    Non-members get the same 404 as a workspace that does not exist, so slugs cannot be probed. Every other
    path runs with no scope, so a tenant-owned query there raises instead of leaking. The admin site, which
    only superusers reach, works across workspaces with scopes disabled.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.workspace = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)

        slug = match.kwargs.get("workspace_slug")
        if slug is None:
            if match.app_name == "admin" and request.user.is_authenticated and request.user.is_superuser:
                with scopes_disabled():
                    return self.get_response(request)
            return self.get_response(request)

        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise Http404("No such workspace")
        with scope(workspace=workspace):
            membership = Membership.objects.filter(user=request.user).select_related("user").first()
            if membership is None:
                raise Http404("No such workspace")
            request.workspace = workspace  # type: ignore[attr-defined]
            request.membership = membership  # type: ignore[attr-defined]
            if request.user.last_workspace_id != workspace.id:
                request.user.last_workspace = workspace
                request.user.save(update_fields=["last_workspace"])
            return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Send the Content-Security-Policy from settings (on when DEBUG is off). No inline scripts are used."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY_ENABLED and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY
        return response
