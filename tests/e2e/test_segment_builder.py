"""A marketer builds "bought in category Shoes in the last 90 days AND (RFM group is At risk OR no email opened in
60 days)" in the browser and sees exactly the right customers (worked out by hand in tests/segments/store.py:
Eve bought shoes 20 days ago and never opened an email; Fay bought shoes 30 days ago and is At risk; Ann and Gus
bought shoes recently but opened emails; Bob's shoes are 100 days old; Dan's shoe order was cancelled)."""

import pytest
from django_scopes import scopes_disabled

from segments.models import Segment, SegmentMembership
from tests.conftest import screenshot
from tests.factories import MembershipFactory, WorkspaceFactory
from tests.segments.store import build_store

pytestmark = [pytest.mark.e2e]


def _sign_in(page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def _builder(page, action) -> None:
    """Do something in the builder and wait until htmx has swapped in and settled the server's re-rendered tree."""
    page.evaluate(
        "() => { window.__builderSettled = false; document.body.addEventListener("
        "'htmx:afterSettle', () => { window.__builderSettled = true; }, {once: true}); }"
    )
    with page.expect_response(lambda r: r.url.endswith("/segments/builder/") and r.status == 200):
        action()
    page.wait_for_function("() => window.__builderSettled && !document.querySelector('.htmx-request')")


def _choose(page, name: str, value: str) -> None:
    _builder(page, lambda: page.select_option(f'select[name="{name}"]', value))


def _type(page, name: str, value: str) -> None:
    def act():
        # typing then leaving the field: the browser fires one "change", as it does for a person
        page.fill(f'input[name="{name}"]', value)
        page.locator(f'input[name="{name}"]').evaluate("element => element.blur()")

    _builder(page, act)


def test_marketer_builds_the_segment_and_sees_exactly_the_right_customers(transactional_db, browser_page):
    workspace = WorkspaceFactory(name="Acme Outfitters", slug="acme")
    MembershipFactory(workspace=workspace, role="marketer", user__email="marketer@acme.test")
    build_store(workspace)
    page = browser_page
    _sign_in(page, "marketer@acme.test")

    # the marketer opens a new segment from the segments page
    page.goto("/w/acme/segments/")
    page.click("text=New segment")
    page.wait_for_url("**/segments/new/")
    page.fill("#id_name", "Lapsed shoe lovers")

    # condition 1: bought in category Shoes in the last 90 days
    _choose(page, "n.1-field", "bought_category")
    _type(page, "n.1-value", "Shoes")
    _type(page, "n.1-days", "90")
    assert page.inner_text("[data-testid=live-count]") == "4"

    # a group: any of ...
    _builder(page, lambda: page.click("[data-testid=add-group-root]"))
    _choose(page, "n.2-match", "any")
    _choose(page, "n.2.1-field", "rfm_group")
    assert page.locator('select[name="n.2.1-operator"]').input_value() == "is"
    # the live count says what is missing while the rule is incomplete
    assert "Condition 2.1: enter a value for 'RFM group'" in page.inner_text("#rule-problems")
    _choose(page, "n.2.1-value", "At risk")
    assert page.inner_text("[data-testid=live-count]") == "1"  # only Fay so far

    _builder(page, lambda: page.click("[data-testid=add-condition-2]"))
    _choose(page, "n.2.2-field", "email_opened")
    _choose(page, "n.2.2-operator", "did_not")
    _type(page, "n.2.2-days", "60")

    # then the live count and the sample show exactly Eve and Fay
    assert page.inner_text("[data-testid=live-count]") == "2"
    sample = set(page.locator("#live-sample [data-customer]").evaluate_all("els => els.map(e => e.dataset.customer)"))
    assert sample == {"eve@gmail.com", "fay@gmail.com"}
    screenshot(page, "segment-builder")

    # when they save it
    page.click("#save-segment")
    page.wait_for_url("**/segments/*/")

    # then the segment page lists exactly those two customers
    members = set(
        page.locator("#members-table [data-customer]").evaluate_all("els => els.map(e => e.dataset.customer)")
    )
    assert members == {"eve@gmail.com", "fay@gmail.com"}
    assert page.inner_text("[data-testid=segment-size]") == "2"
    assert page.inner_text("#rule-summary") == (
        "Bought in category 'Shoes' in the last 90 days and "
        "(RFM group is At risk or Did not open an email in the last 60 days)"
    )
    screenshot(page, "segment-detail")
    with scopes_disabled():
        segment = Segment.objects.get(workspace=workspace, name="Lapsed shoe lovers")
        stored = set(SegmentMembership.objects.filter(segment=segment).values_list("customer__email", flat=True))
    assert stored == {"eve@gmail.com", "fay@gmail.com"}

    # and the segments list shows it with its size
    page.goto("/w/acme/segments/")
    assert page.inner_text('#segments-table tr[data-segment="Lapsed shoe lovers"] [data-size]') == "2"
    screenshot(page, "segment-list")


def test_store_owner_rescores_and_reads_the_rfm_page_and_customer_card(transactional_db, browser_page):
    workspace = WorkspaceFactory(name="Acme Outfitters", slug="acme")
    MembershipFactory(workspace=workspace, role="owner", user__email="owner@acme.test")
    store = build_store(workspace)
    page = browser_page
    _sign_in(page, "owner@acme.test")

    page.goto("/w/acme/segments/rfm/")
    assert "Not scored yet" in page.inner_text("main")
    page.click("text=Rescore now")
    page.wait_for_load_state("networkidle")

    # every customer is counted once, in the grid (buyers) and in the groups table (buyers and prospects)
    grid_total = sum(int(t) for t in page.locator("#rfm-grid [data-customers]").all_inner_texts())
    group_total = sum(int(t) for t in page.locator("#rfm-groups [data-customers]").all_inner_texts())
    assert (grid_total, group_total) == (6, 7)
    assert page.inner_text('#rfm-groups tr[data-group="Prospects"] [data-customers]') == "1"  # Cat
    screenshot(page, "rfm-page")

    # the group links to its customers
    link = page.locator('#rfm-groups tr[data-group="Prospects"] a')
    assert link.get_attribute("href") == "/w/acme/customers/?rfm_group=Prospects"

    # and a customer's page shows their own scores and group history
    # (Dan: last order 30 days ago, tied 2nd-oldest of six buyers -> R2; one order, the smallest spend -> F1 M1)
    page.goto(f"/w/acme/customers/{store['customers']['dan'].pk}/")
    card = page.locator("#customer-rfm-card")
    assert card.locator("[data-testid=rfm-group]").inner_text() == "Almost lost"
    assert card.locator("[data-testid=rfm-scores]").inner_text().split() == [
        "2", "Recency", "1", "Frequency", "1", "Monetary",
    ]  # fmt: skip
    assert "New → Almost lost" in card.locator("[data-testid=rfm-history]").inner_text()
    card.scroll_into_view_if_needed()
    screenshot(page, "customer-rfm-card")
