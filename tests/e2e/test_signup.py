import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled

from crm.models import Invitation, Workspace
from tests.conftest import screenshot

pytestmark = [pytest.mark.e2e]


def test_sign_up_lands_on_empty_dashboard_then_switch_to_demo(transactional_db, browser_page, live_server):
    # given the demo workspace, with an invitation for the person about to sign up
    call_command("seed_demo", customers=60, orders=150, no_events=True)
    demo = Workspace.objects.get(slug="demo")
    with scopes_disabled():
        invitation = Invitation.objects.create(
            workspace=demo,
            email="newcomer@example.com",
            role="marketer",
            expires_at=demo.created_at.replace(year=demo.created_at.year + 1),
        )
    page = browser_page

    # when they sign up
    page.goto("/accounts/signup/")
    page.fill("#id_full_name", "New Comer")
    page.fill("#id_email", "newcomer@example.com")
    page.fill("#id_password", "a-long-passphrase-42")
    page.fill("#id_workspace_name", "Newcomer Goods")
    page.click("button[type=submit]")

    # then they land on their own workspace's empty dashboard
    page.wait_for_url("**/w/newcomer-goods/")
    assert page.locator("[data-testid=dashboard-empty]").is_visible()
    assert "No orders yet" in page.content()
    screenshot(page, "signup-empty-dashboard")

    # when they accept the demo invitation and switch workspaces with the switcher
    page.goto(f"/invitations/{invitation.token}/")
    page.click("text=Accept invitation")
    page.wait_for_url("**/w/demo/")
    page.click("[data-testid=workspace-switcher]")
    page.click("#workspace-switcher >> text=Newcomer Goods")
    page.wait_for_url("**/w/newcomer-goods/")
    page.click("[data-testid=workspace-switcher]")
    page.click("#workspace-switcher >> text=Demo Outfitters")
    page.wait_for_url("**/w/demo/")

    # then the demo workspace is shown
    assert page.locator("#workspace-switcher .ws-name").inner_text() == "Demo Outfitters"
    screenshot(page, "switched-to-demo")
