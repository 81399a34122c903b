from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_scopes import scope, scopes_disabled

from crm import selectors, services
from crm.exceptions import DomainError
from crm.forms import InvitationForm, RoleForm, SignUpForm, WorkspaceCreateForm, WorkspaceSettingsForm
from crm.models import Invitation, Role
from crm.permissions import Capability, requires
from crm.urls_helpers import ws_reverse


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    workspaces = selectors.workspaces_for_user(user=request.user)
    last = request.user.last_workspace
    if last is not None and workspaces.filter(pk=last.pk).exists():
        return redirect("dashboard", workspace_slug=last.slug)
    first = workspaces.first()
    if first is not None:
        return redirect("dashboard", workspace_slug=first.slug)
    return redirect("workspace_create")


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, workspace = services.user_sign_up(**form.cleaned_data)
        except DomainError as error:
            form.add_error(error.field, error.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request, f"Welcome! {workspace.name} is ready. Connect a store or import customers to begin."
            )
            next_url = request.GET.get("next")
            if next_url and next_url.startswith("/invitations/"):
                return redirect(next_url)
            return redirect("dashboard", workspace_slug=workspace.slug)
    return render(request, "registration/signup.html", {"form": form})


@login_required
def workspace_create(request: HttpRequest) -> HttpResponse:
    form = WorkspaceCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        workspace = services.workspace_create(name=form.cleaned_data["name"], owner=request.user)
        messages.success(request, f"{workspace.name} is ready.")
        return redirect("dashboard", workspace_slug=workspace.slug)
    return render(request, "crm/workspace_create.html", {"form": form})


def dashboard(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    from analytics.views import dashboard as analytics_dashboard

    return analytics_dashboard(request, workspace_slug=workspace_slug)


@requires(Capability.MANAGE_WORKSPACE)
def workspace_settings(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    form = WorkspaceSettingsForm(request.POST or None, initial=WorkspaceSettingsForm.initial_for(workspace))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.workspace_update(
                workspace=workspace,
                name=data["name"],
                slug=data["slug"],
                timezone=data["timezone"],
                currency=data["currency"],
                business_hours=data["business_hours"],
            )
        except DomainError as error:
            form.add_error(error.field, error.message)
        else:
            messages.success(request, "Workspace settings saved.")
            return redirect("workspace_settings", workspace_slug=workspace.slug)
    return render(request, "crm/settings.html", {"form": form, "section": "general"})


def members(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    context = {
        "members": selectors.membership_list(workspace=workspace),
        "invitations": selectors.invitation_pending_list(workspace=workspace),
        "invite_form": InvitationForm(),
        "role_choices": RoleForm.base_fields["role"].choices,
        "section": "members",
    }
    return render(request, "crm/members.html", context)


@require_POST
@requires(Capability.MANAGE_MEMBERS)
def member_invite(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invitation_create(
                workspace=request.workspace, invited_by=request.user, **form.cleaned_data
            )
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
    else:
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
    return redirect("members", workspace_slug=workspace_slug)


@require_POST
@requires(Capability.MANAGE_MEMBERS)
def member_role(request: HttpRequest, workspace_slug: str, membership_id: int) -> HttpResponse:
    membership = selectors.membership_get(workspace=request.workspace, membership_id=membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the listed roles.")
        return redirect("members", workspace_slug=workspace_slug)
    try:
        services.membership_change_role(
            workspace=request.workspace,
            membership=membership,
            role=form.cleaned_data["role"],
            changed_by=request.membership,
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{membership.user.email} is now {Role(form.cleaned_data['role']).label}.")
    return redirect("members", workspace_slug=workspace_slug)


@require_POST
@requires(Capability.MANAGE_MEMBERS)
def member_remove(request: HttpRequest, workspace_slug: str, membership_id: int) -> HttpResponse:
    membership = selectors.membership_get(workspace=request.workspace, membership_id=membership_id)
    try:
        services.membership_remove(workspace=request.workspace, membership=membership, removed_by=request.membership)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("members", workspace_slug=workspace_slug)
    messages.success(request, f"{membership.user.email} was removed from the workspace.")
    if membership.user_id == request.user.id:
        return redirect("home")
    return redirect("members", workspace_slug=workspace_slug)


@require_POST
def my_availability(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    is_available = request.POST.get("is_available") == "on"
    services.membership_set_availability(membership=request.membership, is_available=is_available)
    messages.success(
        request,
        "You are available for new tickets." if is_available else "You are away: no new tickets will be routed to you.",
    )
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ws_reverse(request, "members")
    return redirect(next_url)


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    # The token is the secret; the invitation is looked up across workspaces, then work continues in its scope.
    with scopes_disabled():
        invitation = get_object_or_404(Invitation.objects.select_related("workspace"), token=token)
    workspace = invitation.workspace
    with scope(workspace=workspace):
        if request.method == "POST" and request.user.is_authenticated:
            try:
                services.invitation_accept(invitation=invitation, user=request.user)
            except DomainError as error:
                messages.error(request, error.message)
            else:
                messages.success(request, f"You joined {workspace.name}.")
                return redirect("dashboard", workspace_slug=workspace.slug)
        return render(request, "crm/invitation.html", {"invitation": invitation, "invited_workspace": workspace})
