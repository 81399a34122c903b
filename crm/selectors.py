from django.db.models import QuerySet

from crm.models import Invitation, Membership, User, Workspace


def workspaces_for_user(*, user: User) -> QuerySet[Workspace]:
    """The workspaces a user belongs to. Workspace is the tenant itself, so no scope is needed."""
    return Workspace.objects.filter(memberships__user=user).order_by("name")


def membership_list(*, workspace: Workspace) -> QuerySet[Membership]:
    return Membership.objects.filter(workspace=workspace).select_related("user").order_by("user__email")


def membership_get(*, workspace: Workspace, membership_id: int) -> Membership:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(Membership.objects.select_related("user"), workspace=workspace, pk=membership_id)


def invitation_pending_list(*, workspace: Workspace) -> QuerySet[Invitation]:
    from django.utils import timezone

    return Invitation.objects.filter(
        workspace=workspace, accepted_at__isnull=True, expires_at__gt=timezone.now()
    ).order_by("-created_at")
