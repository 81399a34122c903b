from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify
from django_scopes import scope

from crm.exceptions import DomainError
from crm.models import Invitation, Membership, Role, User, Workspace

INVITATION_LIFETIME = timedelta(days=7)


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "workspace"
    slug = base
    suffix = 2
    while Workspace.objects.filter(slug=slug).exists():
        slug = f"{base}-{suffix}"
        suffix += 1
    return slug


@transaction.atomic
def workspace_create(*, name: str, owner: User, timezone_name: str = "UTC", currency: str = "USD") -> Workspace:
    workspace = Workspace.objects.create(
        name=name, slug=_unique_slug(name), timezone=timezone_name, currency=currency.upper()
    )
    with scope(workspace=workspace):
        Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    return workspace


@transaction.atomic
def user_sign_up(*, email: str, password: str, full_name: str, workspace_name: str) -> tuple[User, Workspace]:
    email = email.strip().lower()
    if User.objects.filter(email=email).exists():
        raise DomainError("An account with this email already exists. Sign in instead.", field="email")
    user = User.objects.create_user(email=email, password=password, full_name=full_name.strip())
    workspace = workspace_create(name=workspace_name, owner=user)
    user.last_workspace = workspace
    user.save(update_fields=["last_workspace"])
    return user, workspace


def workspace_update(*, workspace: Workspace, **fields: object) -> Workspace:
    allowed = {"name", "slug", "timezone", "currency", "business_hours"}
    unknown = set(fields) - allowed
    if unknown:
        raise DomainError(f"Unknown workspace settings: {', '.join(sorted(unknown))}")
    if "slug" in fields and Workspace.objects.filter(slug=fields["slug"]).exclude(pk=workspace.pk).exists():
        raise DomainError("Another workspace already uses this address.", field="slug")
    for name, value in fields.items():
        setattr(workspace, name, value)
    workspace.save(update_fields=list(fields))
    return workspace


@transaction.atomic
def invitation_create(*, workspace: Workspace, email: str, role: str, invited_by: User) -> Invitation:
    email = email.strip().lower()
    if role not in Role.values:
        raise DomainError(f"Unknown role {role!r}.", field="role")
    if Membership.objects.filter(workspace=workspace, user__email=email).exists():
        raise DomainError(f"{email} is already a member of this workspace.", field="email")
    if (
        role == Role.OWNER
        and not Membership.objects.filter(workspace=workspace, user=invited_by, role=Role.OWNER).exists()
    ):
        raise DomainError("Only an owner can invite another owner.", field="role")
    invitation = Invitation.objects.create(
        workspace=workspace,
        email=email,
        role=role,
        invited_by=invited_by,
        expires_at=timezone.now() + INVITATION_LIFETIME,
    )
    from crm.tasks import invitation_send

    transaction.on_commit(lambda: invitation_send.delay(workspace_id=workspace.id, invitation_id=invitation.id))
    return invitation


def invitation_send(*, workspace: Workspace, invitation: Invitation) -> None:
    accept_url = f"{settings.SITE_URL}/invitations/{invitation.token}/"
    body = render_to_string(
        "crm/email/invitation.txt",
        {
            "workspace": workspace,
            "invitation": invitation,
            "invited_by": invitation.invited_by,
            "accept_url": accept_url,
        },
    )
    send_mail(
        subject=f"You are invited to {workspace.name}",
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
    )


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    if not invitation.is_pending:
        raise DomainError("This invitation has expired or was already used. Ask for a new one.")
    if user.email.lower() != invitation.email.lower():
        raise DomainError(f"This invitation is for {invitation.email}. Sign in with that address to accept it.")
    workspace = invitation.workspace
    try:
        with transaction.atomic():
            membership = Membership.objects.create(workspace=workspace, user=user, role=invitation.role)
    except IntegrityError:
        membership = Membership.objects.get(workspace=workspace, user=user)
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    user.last_workspace = workspace
    user.save(update_fields=["last_workspace"])
    return membership


def _owners_left_without(workspace: Workspace, membership: Membership) -> int:
    return Membership.objects.filter(workspace=workspace, role=Role.OWNER).exclude(pk=membership.pk).count()


@transaction.atomic
def membership_change_role(
    *, workspace: Workspace, membership: Membership, role: str, changed_by: Membership
) -> Membership:
    if role not in Role.values:
        raise DomainError(f"Unknown role {role!r}.", field="role")
    membership = Membership.objects.select_for_update().get(pk=membership.pk, workspace=workspace)
    if Role.OWNER in (role, membership.role) and changed_by.role != Role.OWNER:
        raise DomainError("Only an owner can grant or take away the owner role.")
    if membership.role == Role.OWNER and role != Role.OWNER and _owners_left_without(workspace, membership) == 0:
        raise DomainError("A workspace needs at least one owner. Make someone else owner first.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, workspace: Workspace, membership: Membership, removed_by: Membership) -> None:
    membership = Membership.objects.select_for_update().get(pk=membership.pk, workspace=workspace)
    if membership.role == Role.OWNER:
        if removed_by.role != Role.OWNER:
            raise DomainError("Only an owner can remove an owner.")
        if _owners_left_without(workspace, membership) == 0:
            raise DomainError("The last owner cannot be removed. Make someone else owner first.")
    membership.delete()


def membership_set_availability(*, membership: Membership, is_available: bool) -> Membership:
    membership.is_available = is_available
    membership.save(update_fields=["is_available"])
    return membership
