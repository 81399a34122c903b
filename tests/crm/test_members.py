import re

import pytest
from django.core import mail
from django.test import Client
from django_scopes import scopes_disabled

from crm.models import Invitation, Membership, Role
from tests.factories import MembershipFactory, UserFactory


def memberships(workspace):
    with scopes_disabled():
        return dict(Membership.objects.filter(workspace=workspace).values_list("user__email", "role"))


def test_owner_invites_and_the_invitee_accepts(workspace, owner_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            f"/w/{workspace.slug}/settings/members/invite/", {"email": "Mia@Example.com", "role": "marketer"}
        )

    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["mia@example.com"]
    path = re.search(r"https?://[^/]+(/invitations/\S+/)", mail.outbox[0].body).group(1)
    mia = UserFactory(email="mia@example.com")
    client = Client()
    client.force_login(mia)
    accepted = client.post(path)
    assert accepted["Location"] == f"/w/{workspace.slug}/"
    assert memberships(workspace)["mia@example.com"] == Role.MARKETER
    assert client.post(path).status_code == 200  # a used invitation cannot be reused
    assert "expired or was already used" in client.get(path).content.decode()


def test_invitation_for_someone_else_is_refused(workspace, owner_client):
    owner_client.post(f"/w/{workspace.slug}/settings/members/invite/", {"email": "mia@example.com", "role": "viewer"})
    with scopes_disabled():
        token = Invitation.objects.get().token
    intruder = UserFactory(email="eve@example.com")
    client = Client()
    client.force_login(intruder)

    response = client.post(f"/invitations/{token}/", follow=True)

    assert "This invitation is for mia@example.com" in response.content.decode()
    assert "eve@example.com" not in memberships(workspace)


@pytest.mark.parametrize("role", ["viewer", "marketer", "support"])
def test_members_without_the_right_cannot_invite(workspace, make_member_client, role):
    client = make_member_client(workspace, role)

    response = client.post(
        f"/w/{workspace.slug}/settings/members/invite/", {"email": "x@example.com", "role": "viewer"}
    )

    assert response.status_code == 403
    with scopes_disabled():
        assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_admin_changes_a_role(workspace, owner, make_member_client):
    admin = make_member_client(workspace, "admin")
    viewer = MembershipFactory(workspace=workspace, role="viewer", user__email="v@example.com")

    admin.post(f"/w/{workspace.slug}/settings/members/{viewer.id}/role/", {"role": "support"})

    assert memberships(workspace)["v@example.com"] == "support"


def test_admin_cannot_grant_owner(workspace, owner, make_member_client):
    admin = make_member_client(workspace, "admin")
    viewer = MembershipFactory(workspace=workspace, role="viewer", user__email="v@example.com")

    response = admin.post(f"/w/{workspace.slug}/settings/members/{viewer.id}/role/", {"role": "owner"}, follow=True)

    assert "Only an owner can grant" in response.content.decode()
    assert memberships(workspace)["v@example.com"] == "viewer"


def test_last_owner_cannot_be_removed_or_demoted(workspace, owner, owner_client):
    with scopes_disabled():
        mine = Membership.objects.get(user=owner)

    removed = owner_client.post(f"/w/{workspace.slug}/settings/members/{mine.id}/remove/", follow=True)
    demoted = owner_client.post(f"/w/{workspace.slug}/settings/members/{mine.id}/role/", {"role": "admin"}, follow=True)

    assert "The last owner cannot be removed" in removed.content.decode()
    assert "at least one owner" in demoted.content.decode()
    assert memberships(workspace)["owner@acme.test"] == "owner"


def test_owner_removes_a_member_who_then_gets_404(workspace, owner_client, make_member_client):
    support = make_member_client(workspace, "support")

    owner_client.post(f"/w/{workspace.slug}/settings/members/{support.membership.id}/remove/")

    assert support.membership.user.email not in memberships(workspace)
    assert support.get(f"/w/{workspace.slug}/").status_code == 404


def test_rep_switches_availability(workspace, make_member_client):
    rep = make_member_client(workspace, "support")

    rep.post(f"/w/{workspace.slug}/settings/availability/", {})

    with scopes_disabled():
        assert Membership.objects.get(pk=rep.membership.pk).is_available is False


def test_availability_switch_never_redirects_off_site(workspace, make_member_client):
    rep = make_member_client(workspace, "support")

    response = rep.post(f"/w/{workspace.slug}/settings/availability/", {"next": "https://evil.example/"})

    assert response["Location"] == f"/w/{workspace.slug}/settings/members/"
