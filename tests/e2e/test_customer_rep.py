"""A support rep searches a customer, opens them, adds a note and sees it on the timeline (real Chromium)."""

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import (
    CustomerFactory,
    EventFactory,
    MembershipFactory,
    OrderFactory,
    OrderLineFactory,
    WorkspaceFactory,
)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "correct-horse-battery"


@pytest.mark.e2e
def test_rep_searches_opens_customer_adds_note_and_sees_it_on_the_timeline(
    transactional_db, live_server, chromium, settings
):
    settings.CONTENT_SECURITY_POLICY_ENABLED = True  # as in production: any inline script would be blocked
    workspace = WorkspaceFactory(name="Acme Outfitters", slug="acme")
    MembershipFactory(workspace=workspace, role="support", user__email="rep@acme.test", user__full_name="Sam Rep")
    for index in range(30):
        CustomerFactory(workspace=workspace, first_name=f"Other{index}", last_name="Shopper")
    maria = CustomerFactory(
        workspace=workspace,
        first_name="Maria",
        last_name="Lopez",
        email="maria@example.org",
        phone="+14155550123",
        orders_count=2,
        total_spent="184.00",
        average_order_value="92.00",
        last_order_at=timezone.now() - dt.timedelta(days=4),
        top_categories=["Shoes"],
        email_consent="subscribed",
        loyalty_points=340,
    )
    order = OrderFactory(workspace=workspace, customer=maria, number="#1042", total="124.00", net_total="124.00")
    OrderLineFactory(order=order, title="Trail runner", category="Shoes", total="124.00")
    now = timezone.now()
    for days in range(22):  # older orders than the orders tab shows at first
        older = OrderFactory(
            workspace=workspace, customer=maria, number=f"#9{days:02d}", placed_at=now - dt.timedelta(days=30 + days)
        )
        OrderLineFactory(order=older, title="Wool socks", category="Accessories", total="12.00")
    for minutes in range(40):
        EventFactory(
            customer=maria,
            type="product_viewed",
            occurred_at=now - dt.timedelta(hours=1, minutes=minutes),
            properties={"title": f"Product {minutes}"},
        )
    EventFactory(
        customer=maria,
        type="order_placed",
        occurred_at=now - dt.timedelta(days=4),
        properties={"number": "#1042", "total": "124.00", "currency": "USD", "items": 1},
    )

    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(f"{message.text} {message.location}") if message.type == "error" else None,
    )
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "rep@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")

    # search: the results swap in by htmx (no page load), the URL follows
    # (page.evaluate/wait_for_function would need 'unsafe-eval', which the CSP rightly refuses; locators do not)
    page.goto(f"{live_server.url}/w/acme/customers/")
    assert page.locator("[data-testid=result-count]").inner_text() == "31"
    page.fill("[data-testid=customer-search]", "lopez")
    expect(page.locator("[data-testid=result-count]")).to_have_text("1")
    assert "q=lopez" in page.url
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.fill("[data-testid=customer-search]", "")
    expect(page.locator("[data-testid=result-count]")).to_have_text("31")
    page.screenshot(path=str(SCREENSHOTS / "customers-list.png"))
    page.fill("[data-testid=customer-search]", "lopez")
    expect(page.locator("[data-testid=result-count]")).to_have_text("1")
    page.get_by_role("link", name="Maria Lopez").click()

    # the customer page
    page.wait_for_selector("[data-testid=customer-name]")
    assert page.locator("[data-testid=customer-name]").inner_text() == "Maria Lopez"
    assert page.locator("[data-testid=orders-count]").inner_text() == "2"
    assert page.locator("#timeline-list .timeline-item").count() == 25

    # add a note: it shows in the notes and, without a reload, at the top of the timeline
    page.fill("[data-testid=note-body]", "Wants the trail runner in a 39 when back in stock")
    page.click("[data-testid=note-submit]")
    first = page.locator("#timeline-list .timeline-item").first
    first.filter(has_text="Wants the trail runner").wait_for(timeout=10_000)
    assert first.get_attribute("data-event-type") == "note_added"
    assert "Sam Rep: Wants the trail runner in a 39" in first.inner_text()
    assert "Wants the trail runner in a 39 when back in stock" in page.locator("#notes").inner_text()

    # scrolling to the end of the timeline loads the earlier events
    page.locator(".timeline-more").scroll_into_view_if_needed()
    expect(page.locator("#timeline-list .timeline-item")).to_have_count(42)
    assert "Placed order #1042" in page.locator("#timeline-list").inner_text()

    # the orders tab shows the latest 20 orders; "Load older orders" appends the rest in place
    page.get_by_role("tab", name="Orders").click()
    expect(page.locator("#tab-orders [data-order-id]")).to_have_count(20)
    page.locator("[data-testid=orders-more]").click()
    expect(page.locator("#tab-orders [data-order-id]")).to_have_count(23)
    expect(page.locator("[data-testid=orders-more]")).to_have_count(0)
    assert "Order #921" in page.locator("#tab-orders").inner_text()
    page.wait_for_timeout(300)  # the tab's fade-in
    page.locator("[data-order-id]").nth(14).scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "customer-orders.png"), full_page=False)
    page.get_by_role("tab", name="Timeline").click()

    assert [error for error in errors if "favicon.ico" not in error] == []
    page.locator("[data-testid=customer-name]").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "customer.png"), full_page=False)
