from crm.models import Workspace


def settings_form(**overrides):
    data = {
        "name": "Acme Outfitters",
        "slug": "acme",
        "timezone": "Europe/Berlin",
        "currency": "eur",
        "hours_1_start": "08:30",
        "hours_1_end": "18:00",
        "hours_6_start": "10:00",
        "hours_6_end": "14:00",
    }
    data.update(overrides)
    return data


def test_owner_updates_workspace_settings(workspace, owner_client):
    response = owner_client.post(f"/w/{workspace.slug}/settings/", settings_form())

    assert response.status_code == 302
    workspace.refresh_from_db()
    assert (workspace.timezone, workspace.currency) == ("Europe/Berlin", "EUR")
    assert workspace.business_hours == {"1": ["08:30", "18:00"], "6": ["10:00", "14:00"]}


def test_bad_settings_say_which_field_is_wrong_and_change_nothing(workspace, owner_client):
    response = owner_client.post(
        f"/w/{workspace.slug}/settings/", settings_form(currency="E1R", hours_1_end="07:00", hours_6_end="")
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "three-letter ISO 4217 code" in page
    assert "Monday: closing time must be after opening time." in page
    assert "Saturday: give both an opening and a closing time, or neither." in page
    workspace.refresh_from_db()
    assert workspace.currency == "USD"


def test_slug_taken_by_another_workspace_is_refused(workspace, other_workspace, owner_client):
    response = owner_client.post(f"/w/{workspace.slug}/settings/", settings_form(slug=other_workspace.slug))

    assert "Another workspace already uses this address." in response.content.decode()
    assert Workspace.objects.get(pk=workspace.pk).slug == "acme"


def test_viewer_cannot_change_settings(workspace, make_member_client):
    viewer = make_member_client(workspace, "viewer")

    response = viewer.post(f"/w/{workspace.slug}/settings/", settings_form(name="Hacked"))

    assert response.status_code == 403
    assert Workspace.objects.get(pk=workspace.pk).name == "Acme Outfitters"
