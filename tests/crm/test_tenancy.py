from django.test import Client, override_settings

from tests.factories import MembershipFactory
from tests.tenancy import find_cross_workspace_leaks, workspace_routes_with_objects


def test_cannot_access_other_workspace_objects_on_any_url(workspace, other_workspace, owner_client):
    # given a member of A only, and every workspace URL that takes an object id
    assert workspace_routes_with_objects(), "there must be object URLs to walk"

    # when each is called under A's slug with B's objects
    leaks, missing = find_cross_workspace_leaks(client=owner_client, own=workspace, foreign=other_workspace)

    # then all answer 404, nothing in B changed, and every URL kwarg is known to the walker
    assert missing == [], f"add these URL kwargs to tests/url_objects.py: {missing}"
    assert leaks == []


@override_settings(ROOT_URLCONF="tests.crm.leaky_urls")
def test_walker_catches_a_view_that_forgets_its_scope(workspace, other_workspace, owner_client):
    leaks, missing = find_cross_workspace_leaks(
        client=owner_client, own=workspace, foreign=other_workspace, urlconf="tests.crm.leaky_urls"
    )

    assert missing == []
    assert {(leak.method, leak.reason) for leak in leaks} == {
        ("GET", "answered instead of 404"),
        ("POST", "answered instead of 404"),
        ("POST", "changed the other workspace's data"),
    }


def test_non_member_gets_404_for_the_whole_workspace(workspace, other_workspace):
    outsider = MembershipFactory(workspace=other_workspace).user
    client = Client()
    client.force_login(outsider)

    assert client.get(f"/w/{workspace.slug}/").status_code == 404
    assert client.get(f"/w/{workspace.slug}/settings/members/").status_code == 404
    assert client.get("/w/no-such-workspace/").status_code == 404


def test_anonymous_user_is_sent_to_login(workspace):
    response = Client().get(f"/w/{workspace.slug}/customers/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
