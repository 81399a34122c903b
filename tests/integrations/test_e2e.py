"""In a real browser: an admin connects the fake Shopify from the Integrations page and watches the sync finish; a
storefront page on another origin loads the served snippet and its events reach the CRM."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django_scopes import scope

from customers.models import Customer, Event, Order
from integrations import services
from tests.factories import MembershipFactory, WorkspaceFactory

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture
def browser(chromium):
    return chromium


def sign_in(page, live_server, email):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("button[type=submit]")


@pytest.mark.e2e
def test_admin_connects_the_fake_shopify_and_sees_it_healthy(
    transactional_db, live_server, browser, fake_shopify, catalogue, settings
):
    settings.SITE_URL = live_server.url
    workspace = WorkspaceFactory(slug="e2e-shop", name="E2E Outfitters")
    MembershipFactory(workspace=workspace, role="admin", user__email="admin@e2e.test")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server, "admin@e2e.test")

    page.goto(f"{live_server.url}/w/e2e-shop/integrations/")
    assert page.locator("[data-platform-only=woocommerce]").first.is_hidden()  # only Shopify's fields for Shopify
    page.select_option("#id_platform", "shopify")
    page.fill("#id_name", "Fake outdoor shop")
    page.fill("#id_address", fake_shopify.url)
    page.fill("#id_access_token", fake_shopify.access_token)
    page.fill("#id_webhook_secret", "secret-1")
    page.click("text=Connect and check")

    page.wait_for_selector("text=The first full sync has started.")
    deadline = time.monotonic() + 30
    while "Healthy" not in page.locator("#health-panel [data-testid=health]").inner_text():
        assert time.monotonic() < deadline, page.locator("#health-panel").inner_text()
        page.reload()
    assert "orders 230 new" in " ".join(page.locator("#health-panel .sync-run").inner_text().split())
    page.click("text=Check connection")
    page.wait_for_selector("[data-testid=check-result]")
    assert "Connected: Fake Outdoor Shop" in page.locator("[data-testid=check-result]").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "integrations_connection.png"), full_page=True)
    page.goto(f"{live_server.url}/w/e2e-shop/integrations/")
    page.screenshot(path=str(SCREENSHOTS / "integrations_list.png"), full_page=True)
    assert errors == []
    with scope(workspace=workspace):
        assert Order.objects.filter(source="shopify").count() == 230


class _Storefront(BaseHTTPRequestHandler):
    html = b""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.html)


@pytest.mark.e2e
def test_snippet_on_a_storefront_sends_events_and_identifies(transactional_db, live_server, browser):
    workspace = WorkspaceFactory(slug="e2e-track")
    with scope(workspace=workspace):
        tracking = services.tracking_get_or_create(workspace=workspace)
    _Storefront.html = f"""<!doctype html><html><head><title>Trail Runner</title>
      <script src="{live_server.url}/t/{tracking.public_key}/tracker.js"></script></head>
      <body><button id="buy" onclick="crm.track('added_to_cart', {{product_id: '7', quantity: 1}});
        crm.identify({{email: 'shopper@example.com', method: 'checkout'}});">Buy</button></body></html>""".encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Storefront)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/products/trail-runner")
        page.click("#buy")
        deadline = time.monotonic() + 15
        with scope(workspace=workspace):
            while not Event.objects.filter(type="identified").exists():
                assert time.monotonic() < deadline, "the storefront's events never arrived"
                time.sleep(0.2)
            customer = Customer.objects.get(email="shopper@example.com")
            events = Event.objects.filter(customer=customer)
            assert sorted(events.values_list("type", flat=True)) == [
                "added_to_cart",
                "customer_created",
                "identified",
                "page_viewed",
            ]
            assert events.get(type="page_viewed").properties["title"] == "Trail Runner"
    finally:
        server.shutdown()
