"""A marketer builds a custom flow from scratch: trigger and goal, a split with a step in each branch, an email
after it, one step moved, a bad step refused with a clear message, then turns the flow on."""

import pytest
from django_scopes import scopes_disabled

from campaigns.models import Flow, FlowStep
from tests.campaigns.factories import EmailTemplateFactory
from tests.conftest import screenshot
from tests.factories import MembershipFactory, WorkspaceFactory

pytestmark = [pytest.mark.e2e]


def _sign_in(page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def _add_step(page, add_button: str, **fields) -> None:
    """Open an "Add a step" form, fill it and submit it; htmx swaps the steps in place."""
    if page.locator(f'details:has(> [data-testid="{add_button}"])').get_attribute("open") is None:
        page.click(f'[data-testid="{add_button}"]')
    form = page.locator(f'[data-testid="{add_button}"] + form')
    for name, value in fields.items():
        if name in ("kind", "template", "field", "op", "segment"):
            form.locator(f'select[name="{name}"]').select_option(value)
        else:
            form.locator(f'input[name="{name}"]').fill(value)
    with page.expect_response(lambda r: "/steps/add/" in r.url):
        form.locator("button[type=submit]").click()


def test_marketer_builds_a_custom_flow_with_a_split(transactional_db, browser_page):
    workspace = WorkspaceFactory(name="Acme Outfitters", slug="acme")
    MembershipFactory(workspace=workspace, role="marketer", user__email="marketer@acme.test")
    EmailTemplateFactory(workspace=workspace, name="Thanks for coming back")
    EmailTemplateFactory(workspace=workspace, name="Our bestsellers")
    page = browser_page
    _sign_in(page, "marketer@acme.test")

    page.goto("/w/acme/campaigns/flows/")
    page.click('[data-testid="new-flow"]')
    page.fill("#id_name", "Second order nudge")
    page.select_option("#id_trigger", "event")
    page.select_option("#id_trigger_event", "order_placed")
    page.select_option("#id_goal_event", "order_placed")
    page.click("text=Create and add steps")
    page.wait_for_selector("text=The goal cannot be the event that starts the flow")
    page.select_option("#id_goal_event", "email_clicked")
    page.click("text=Create and add steps")
    page.wait_for_selector("text=Add its steps, then turn it on.")

    _add_step(page, "add-step-top-main", kind="wait", wait_hours="48")
    page.wait_for_selector('[data-testid="step-wait"]')
    _add_step(page, "add-step-top-main", kind="condition", field="orders_count", op="gte", value="2")
    page.wait_for_selector("text=Split: Number of orders ≥ 2?")
    with scopes_disabled():
        split = FlowStep.objects.get(kind="condition")
    _add_step(page, f"add-step-{split.pk}-yes", kind="send_email", template="Thanks for coming back")
    _add_step(page, f"add-step-{split.pk}-no", kind="add_tag", tag="one-time-buyer")
    page.wait_for_selector('[data-testid="step-add_tag"]')
    _add_step(page, "add-step-top-main", kind="send_email")  # no email chosen
    page.wait_for_selector('[data-testid="step-error"]:has-text("Choose the email this step sends.")')
    _add_step(page, "add-step-top-main", kind="send_email", template="Our bestsellers")

    # the split goes first: its "Move up" button, then the list is swapped in place
    split_card = page.locator('[data-testid="step-condition"]')
    with page.expect_response(lambda r: "/move/" in r.url):
        split_card.locator('button[aria-label="Move up"]').click()
    page.wait_for_selector('[data-testid="step-condition"]:has(button[aria-label="Move down"])')
    screenshot(page, "campaigns-flow-builder")

    page.click('[data-testid="flow-toggle"]')
    page.wait_for_selector("text=is now on")

    with scopes_disabled():
        flow = Flow.objects.get(name="Second order nudge")
        steps = [
            (s.kind, s.parent_id is not None, s.branch, s.position)
            for s in FlowStep.objects.filter(flow=flow).order_by("parent_id", "branch", "position")
        ]
    assert flow.is_active and (flow.trigger_event, flow.goal_event) == ("order_placed", "email_clicked")
    assert sorted(steps) == sorted(
        [
            ("condition", False, "", 0),
            ("wait", False, "", 1),
            ("send_email", False, "", 2),
            ("send_email", True, "yes", 0),
            ("add_tag", True, "no", 0),
        ]
    )
