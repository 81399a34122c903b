import re

from django.core import mail
from django.test import Client
from django_scopes import scopes_disabled

from crm.models import Membership, Role, User, Workspace
from tests.factories import MembershipFactory, UserFactory

SIGNUP = {
    "full_name": "Rita Shop",
    "email": "Rita@Example.com",
    "password": "a-long-passphrase-42",
    "workspace_name": "Rita's Rugs",
}


def test_sign_up_creates_user_workspace_and_owner_membership(db):
    client = Client()

    response = client.post("/accounts/signup/", SIGNUP)

    workspace = Workspace.objects.get(name="Rita's Rugs")
    assert response.status_code == 302 and response["Location"] == f"/w/{workspace.slug}/"
    user = User.objects.get(email="rita@example.com")
    with scopes_disabled():
        assert Membership.objects.get(workspace=workspace, user=user).role == Role.OWNER
    dashboard = client.get(response["Location"])
    assert dashboard.status_code == 200
    assert "No orders yet" in dashboard.content.decode()


def test_sign_up_with_taken_email_or_weak_password_explains_what_is_wrong(db):
    UserFactory(email="rita@example.com")

    taken = Client().post("/accounts/signup/", SIGNUP)
    weak = Client().post("/accounts/signup/", {**SIGNUP, "email": "new@example.com", "password": "12345678"})

    assert taken.status_code == 200 and "already exists" in taken.content.decode()
    assert weak.status_code == 200 and "too short" in weak.content.decode()
    assert Workspace.objects.count() == 0


def test_login_and_logout(db):
    UserFactory(email="sam@example.com")
    client = Client()

    response = client.post("/accounts/login/", {"username": "sam@example.com", "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302 and client.get("/")["Location"] == "/accounts/login/"


def test_login_is_locked_after_repeated_failures(db):
    UserFactory(email="sam@example.com")
    client = Client()

    for _ in range(5):
        client.post("/accounts/login/", {"username": "sam@example.com", "password": "wrong"})
    locked = client.post("/accounts/login/", {"username": "sam@example.com", "password": "correct-horse-battery"})

    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()


def test_password_reset_by_email(db):
    UserFactory(email="sam@example.com")
    client = Client()

    client.post("/accounts/password_reset/", {"email": "sam@example.com"})

    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = client.get(link)["Location"]
    response = client.post(
        form_url, {"new_password1": "brand-new-passphrase-7", "new_password2": "brand-new-passphrase-7"}
    )
    assert response.status_code == 302
    assert User.objects.get(email="sam@example.com").check_password("brand-new-passphrase-7")


def test_home_sends_a_member_to_their_last_workspace(db):
    first = MembershipFactory(workspace__slug="first", workspace__name="A first")
    MembershipFactory(user=first.user, workspace__slug="second", workspace__name="B second")
    client = Client()
    client.force_login(first.user)

    client.get("/w/second/")

    assert client.get("/")["Location"] == "/w/second/"


def test_workspace_switcher_lists_only_my_workspaces(db):
    mine = MembershipFactory(workspace__name="Mine one", workspace__slug="mine-one")
    MembershipFactory(user=mine.user, workspace__name="Mine two", workspace__slug="mine-two")
    MembershipFactory(workspace__name="Not mine", workspace__slug="not-mine")
    client = Client()
    client.force_login(mine.user)

    page = client.get("/w/mine-one/").content.decode()

    assert "Mine two" in page and "/w/mine-two/" in page
    assert "Not mine" not in page


def test_create_another_workspace(db):
    user = UserFactory()
    client = Client()
    client.force_login(user)

    response = client.post("/workspaces/new/", {"name": "Second Brand"})

    workspace = Workspace.objects.get(name="Second Brand")
    assert response["Location"] == f"/w/{workspace.slug}/"
    with scopes_disabled():
        assert Membership.objects.get(workspace=workspace).user == user
