"""The dashboard rendered in a real browser from seed data: every KPI and every chart filled."""

from pathlib import Path

import pytest
from django.core.management import call_command

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _ensure_segments() -> None:
    """The segment chart needs segments; seed_demo leaves that to the segments app, which may add none."""
    from django_scopes import scope

    from crm.models import Workspace
    from segments.models import Segment
    from segments.services import segment_create, starter_definitions

    workspace = Workspace.objects.get(slug="demo")
    with scope(workspace=workspace):
        if Segment.objects.exists():
            return
        for definition in starter_definitions(workspace=workspace):
            if definition["key"] in ("repeat_buyers", "first_time_buyers", "vips"):
                segment_create(workspace=workspace, name=definition["name"], rules=definition["rules"])


def _sign_in(page, live_server):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "demo@example.com")
    page.fill("input[name=password]", "demo-password-1")
    page.click("button[type=submit]")


@pytest.mark.e2e
def test_dashboard_renders_every_chart_from_seed_data(transactional_db, live_server, chromium):
    from analytics.charts import CHARTS

    call_command("seed_demo", customers=400, orders=1600, seed=5)
    _ensure_segments()
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _sign_in(page, live_server)

    page.goto(f"{live_server.url}/w/demo/?period=90")
    for name in CHARTS:
        page.wait_for_selector(f"[data-testid=plot-{name}] .main-svg", timeout=20_000)

    assert page.locator("[data-testid=kpis] .kpi-card").count() == 17
    assert page.locator("[data-testid=kpi-revenue]").inner_text().startswith("$")
    assert page.locator("[data-testid^=chart-empty-]").count() == 0
    assert errors == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    # the definition of a KPI is on the page
    page.locator("[data-kpi=retention] [data-bs-toggle=popover]").click()
    assert "(E − N) ÷ S" in page.locator(".popover").inner_text()

    # and on a phone the charts fit the screen
    phone = chromium.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    _sign_in(phone, live_server)
    phone.goto(f"{live_server.url}/w/demo/?period=90")
    phone.wait_for_selector("[data-testid=plot-revenue] .main-svg", timeout=20_000)
    box = phone.locator("[data-testid=plot-revenue]").bounding_box()
    assert box["width"] <= 390
    phone.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=False)

    page.goto(f"{live_server.url}/w/demo/analytics/predictions/")
    page.wait_for_selector("[data-testid=plot-forecast] .main-svg", timeout=20_000)
    page.screenshot(path=str(SCREENSHOTS / "predictions.png"), full_page=True)

    # every question on the reports page gets its answer
    from analytics.reports import REPORTS

    page.goto(f"{live_server.url}/w/demo/analytics/reports/?period=90")
    for name in REPORTS:
        page.wait_for_selector(f"[data-testid=answer-{name}]", timeout=20_000)
    page.screenshot(path=str(SCREENSHOTS / "reports.png"), full_page=True)
    assert errors == []


@pytest.mark.e2e
def test_retention_over_100_percent_is_explained_on_its_card(transactional_db, live_server, chromium):
    import datetime as dt

    from django_scopes import scope

    from analytics import services
    from tests.analytics.store import build_store
    from tests.factories import MembershipFactory, OrderFactory, WorkspaceFactory

    # given the hand-built store of the KPI tests, where D (lapsed since 2024) orders again on Mar 31
    workspace = WorkspaceFactory(name="Acme Outfitters", slug="acme")
    user = MembershipFactory(workspace=workspace, role="owner", user__email="owner@acme.test").user
    user.set_password("a-long-password-1")
    user.save()
    customers = build_store(workspace)
    OrderFactory(workspace=workspace, customer=customers["D"], placed_at=dt.datetime(2025, 3, 31, 8, tzinfo=dt.UTC))
    with scope(workspace=workspace):
        services.rollups_rebuild(workspace=workspace)
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "owner@acme.test")
    page.fill("input[name=password]", "a-long-password-1")
    page.click("button[type=submit]")

    page.goto(f"{live_server.url}/w/acme/?period=custom&start=2025-03-01&end=2025-03-31")

    card = page.locator("[data-kpi=retention]")
    assert card.locator("[data-testid=kpi-retention]").inner_text() == "133.3%"
    assert card.locator("[data-testid=kpi-note-retention]").inner_text().strip() == (
        "Over 100%: 2 lapsed customers came back. 67% of those active at the start still are."
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("[data-testid=kpis]").screenshot(path=str(SCREENSHOTS / "dashboard-retention-note.png"))
