"""A marketer writes an email with a live preview, sends themselves a test, sends a campaign to a segment and
reads its report (one click recorded through the tracked link)."""

import re

import pytest
from django.core import mail
from django_scopes import scopes_disabled

from campaigns.models import Campaign, Message
from tests.campaigns.factories import make_segment
from tests.conftest import screenshot
from tests.factories import CustomerFactory, MembershipFactory, WorkspaceFactory

pytestmark = [pytest.mark.e2e]


def _sign_in(page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_marketer_writes_tests_sends_and_reads_the_report(transactional_db, browser_page, settings):
    settings.SITE_URL = ""  # tracked links point at the live server (the page's base URL)
    workspace = WorkspaceFactory(name="Acme Outfitters", slug="acme")
    MembershipFactory(workspace=workspace, role="marketer", user__email="marketer@acme.test")
    vips = [
        CustomerFactory(workspace=workspace, email_consent="subscribed", first_name=name)
        for name in ("Ann", "Bob", "Cleo")
    ]
    CustomerFactory(workspace=workspace, email_consent="not_subscribed", first_name="Dan")
    make_segment(workspace, [*vips], name="VIP customers")
    page = browser_page
    _sign_in(page, "marketer@acme.test")

    # writes an email
    page.goto("/w/acme/campaigns/")
    page.click("text=New template")
    page.fill("#id_name", "Spring preview")
    page.fill("#id_subject", 'Spring is here, {{ first_name | default: "friend" }}')
    page.fill('textarea[name="block-0-text"]', "Hi {{ first_name }},\n\nOur spring collection just landed.")
    page.locator('textarea[name="block-0-text"]').evaluate("element => element.blur()")
    page.select_option('select[name="preview_customer"]', label="As " + vips[0].full_name)
    page.wait_for_selector('[data-testid="preview-subject"]:has-text("Spring is here, Ann")')
    frame = page.frame_locator("iframe.email-preview")
    frame.locator("text=Our spring collection just landed.").wait_for()
    screenshot(page, "campaigns-editor")

    # sends a test to themselves
    page.fill('input[name="to_email"]', "marketer@acme.test")
    page.click("text=Save & send test")
    page.wait_for_selector("text=a test sent to marketer@acme.test")
    assert [(m.subject, m.to) for m in mail.outbox] == [("[Test] Spring is here, Ann", ["marketer@acme.test"])]

    # sends a campaign to the segment
    page.goto("/w/acme/campaigns/new/")
    page.fill("#id_name", "Spring launch")
    page.select_option("#id_template", label="Spring preview")
    page.check("#id_audience_segment_ids_0")
    page.click("text=Save campaign")
    page.wait_for_selector('[data-testid="audience-size"]:has-text("3")')
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Send now")
    page.wait_for_selector("text=Sending to 3 recipients.")
    campaign_emails = [m for m in mail.outbox if not m.subject.startswith("[Test]")]
    assert sorted(m.to[0] for m in campaign_emails) == sorted(c.email for c in vips)
    assert {m.subject for m in campaign_emails} == {f"Spring is here, {c.first_name}" for c in vips}

    # a recipient clicks the link in the email
    html = next(m for m in campaign_emails if m.to == [vips[1].email]).alternatives[0][0]
    unsubscribe = re.search(r'href="([^"]*/e/u/[^"]+)"', html)[1]
    assert unsubscribe.startswith("/e/u/")
    page.request.post(
        unsubscribe, data="List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    # reads the report
    page.reload()
    assert page.inner_text('[data-testid="kpi-delivered"]') == "3"
    assert "1 unsubscribed" in page.inner_text('[data-testid="report"]')
    with scopes_disabled():
        assert Campaign.objects.get(name="Spring launch").status == "sent"
        assert Message.objects.filter(status="sent").count() == 3
    screenshot(page, "campaigns-report")
