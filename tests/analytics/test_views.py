import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone
from django_scopes import scope

from analytics import selectors, services
from analytics.charts import CHARTS
from analytics.models import DailyMetrics, ModelFit
from analytics.reports import REPORTS
from customers.models import Customer
from tests.analytics.store import build_store
from tests.factories import CustomerFactory, MembershipFactory, OrderFactory

MARCH = "period=custom&start=2025-03-01&end=2025-03-31"


@pytest.fixture
def store(workspace):
    customers = build_store(workspace)
    with scope(workspace=workspace):
        services.rollups_refresh(workspace=workspace, start=dt.date(2024, 1, 1), end=dt.date(2025, 4, 30))
    return customers


def test_new_workspace_is_told_how_to_get_data_in(workspace, owner_client):
    response = owner_client.get(f"/w/{workspace.slug}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="dashboard-empty"' in html
    assert "Connect a store" in html and f"/w/{workspace.slug}/integrations/" in html
    assert "Import a CSV" in html and f"/w/{workspace.slug}/customers/" in html


def test_dashboard_shows_kpis_and_loads_every_chart_after_the_page(workspace, owner_client, store):
    response = owner_client.get(f"/w/{workspace.slug}/?{MARCH}")

    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'data-testid="kpi-revenue">\s*\$285\.00', html)
    assert re.search(r'data-testid="kpi-retention">\s*100\.0%', html)
    assert "+375.0%" in html  # revenue 285 against 60
    for name in CHARTS:
        assert (
            f'hx-get="/w/{workspace.slug}/analytics/charts/{name}/?{MARCH.replace("&", "&amp;")}&amp;grain=day"' in html
        )
    # no inline script: only the JSON blocks app.js reads, and those only come with the chart fragments
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []


def test_chart_fragment_for_htmx_and_a_full_page_without(workspace, owner_client, store):
    url = f"/w/{workspace.slug}/analytics/charts/revenue/?{MARCH}&grain=month"

    fragment = owner_client.get(url, HTTP_HX_REQUEST="true")
    page = owner_client.get(url)

    assert fragment.status_code == 200
    assert b"<html" not in fragment.content
    assert b'data-plotly="chart-revenue"' in fragment.content
    assert fragment["Vary"].count("HX-Request") == 1
    assert b"<html" in page.content and b'data-plotly="chart-revenue"' in page.content


def test_chart_csv_is_the_table_behind_the_chart(workspace, owner_client, store):
    response = owner_client.get(f"/w/{workspace.slug}/analytics/charts/revenue.csv?{MARCH}&grain=month")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.decode().splitlines() == ["period,revenue,orders,aov", "2025-03-01,285.0,7.0,40.71"]


def test_funnel_csv(workspace, owner_client, store):
    response = owner_client.get(f"/w/{workspace.slug}/analytics/charts/funnel.csv?{MARCH}")

    assert response.content.decode().splitlines()[1:] == [
        "Visit,4,1.0,1.0",
        "Product view,3,0.75,0.75",
        "Add to cart,2,0.5,0.6666666666666666",
        "Checkout,1,0.25,0.5",
        "Order,1,0.25,1.0",
    ]


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_every_chart_answers_and_exports_on_an_empty_workspace(workspace, owner_client, name):
    fragment = owner_client.get(f"/w/{workspace.slug}/analytics/charts/{name}/", HTTP_HX_REQUEST="true")
    export = owner_client.get(f"/w/{workspace.slug}/analytics/charts/{name}.csv")

    assert fragment.status_code == 200
    assert f'data-testid="chart-empty-{name}"'.encode() in fragment.content
    assert b"Integrations" in fragment.content
    assert export.status_code == 200


def test_a_bad_custom_range_is_explained_not_a_500(workspace, owner_client, store):
    response = owner_client.get(f"/w/{workspace.slug}/?period=custom&start=2025-03-31&end=2025-03-01")

    assert response.status_code == 200
    assert b"The end date must be on or after the start date." in response.content
    assert b"Showing the last 30 days instead." in response.content


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_report_answers_its_question(workspace, owner_client, store, name):
    page = owner_client.get(f"/w/{workspace.slug}/analytics/reports/?{MARCH}")
    fragment = owner_client.get(f"/w/{workspace.slug}/analytics/reports/?{MARCH}&report={name}", HTTP_HX_REQUEST="true")
    export = owner_client.get(f"/w/{workspace.slug}/analytics/reports/{name}.csv?{MARCH}")

    assert REPORTS[name].question.encode() in page.content
    assert fragment.status_code == 200 and b"<html" not in fragment.content
    assert f'data-testid="answer-{name}"'.encode() in fragment.content
    assert export.status_code == 200


def test_report_answers_on_the_hand_built_store(workspace, owner_client, store):
    def answer(name):
        html = owner_client.get(
            f"/w/{workspace.slug}/analytics/reports/?{MARCH}&report={name}", HTTP_HX_REQUEST="true"
        ).content.decode()
        return re.search(rf'data-testid="answer-{name}">(.*?)</p>', html).group(1)

    # 4 carts started in March: B's abandoned and C's recovered were left; C's came back.
    assert (
        answer("abandoned-carts") == "2 of 4 carts were left without ordering; 1 of those (50%) came back and ordered."
    )
    # A's order on Mar 5 followed 2 views (page + product), B's webhook order none: median 1, average 1.0.
    assert answer("touches-before-order").startswith("A typical order follows 1 page/product views (average 1.0)")


def test_unknown_report_is_404(workspace, owner_client):
    response = owner_client.get(f"/w/{workspace.slug}/analytics/reports/?report=nope", HTTP_HX_REQUEST="true")
    assert response.status_code == 404


def test_viewer_sees_the_dashboard_but_cannot_refit_or_rebuild(workspace, make_member_client, store):
    viewer = make_member_client(workspace, "viewer")

    assert viewer.get(f"/w/{workspace.slug}/").status_code == 200
    assert viewer.post(f"/w/{workspace.slug}/analytics/predictions/refit/").status_code == 403
    assert viewer.post(f"/w/{workspace.slug}/analytics/rollups/rebuild/").status_code == 403
    with scope(workspace=workspace):
        assert not ModelFit.objects.exists()


def test_owner_refit_runs_the_fit(workspace, owner_client, store, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(f"/w/{workspace.slug}/analytics/predictions/refit/")

    assert response.status_code == 302
    with scope(workspace=workspace):
        fit = ModelFit.objects.get()
    assert fit.status == ModelFit.Status.TOO_LITTLE_HISTORY
    page = owner_client.get(f"/w/{workspace.slug}/analytics/predictions/").content.decode()
    assert "Too little history to predict yet: 7 customers with orders (at least 100 needed)" in page


def test_dashboard_builds_missing_rollups_when_orders_exist(
    workspace, owner_client, django_capture_on_commit_callbacks
):
    OrderFactory(workspace=workspace, placed_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.get(f"/w/{workspace.slug}/")

    assert b"Your figures are being prepared" in response.content
    with scope(workspace=workspace):
        assert DailyMetrics.objects.filter(orders=1).count() == 1


def test_customer_card_shows_predictions(workspace, owner_client):
    customer = CustomerFactory(
        workspace=workspace,
        orders_count=3,
        probability_alive=0.42,
        expected_orders_90d=1.24,
        predicted_clv="310.50",
        churn_risk="medium",
        clv_tier="high",
        predicted_next_order_at=dt.datetime(2026, 1, 15, tzinfo=dt.UTC),
    )

    html = owner_client.get(f"/w/{workspace.slug}/customers/{customer.pk}/").content.decode()

    assert "USD 310.50" in html
    assert "12-month value · high tier" in html
    assert "<strong>42%</strong>" in html
    assert "medium churn risk" in html
    assert "1.2" in html  # expected orders, one decimal
    assert "next order expected around <strong>Jan 15, 2026</strong>" in html


def test_cannot_access_other_workspace_figures(workspace, other_workspace, owner_client, store):
    # given B's big order on a March day and a member of A only
    OrderFactory(
        workspace=other_workspace, placed_at=dt.datetime(2025, 3, 3, 12, tzinfo=dt.UTC), total=9999, net_total=9999
    )
    with scope(workspace=other_workspace):
        services.rollups_refresh(workspace=other_workspace, start=dt.date(2025, 3, 1), end=dt.date(2025, 3, 31))

    own = owner_client.get(f"/w/{workspace.slug}/analytics/charts/revenue.csv?{MARCH}&grain=month")
    foreign = owner_client.get(f"/w/{other_workspace.slug}/analytics/charts/revenue.csv?{MARCH}&grain=month")
    outsider = Client()
    outsider.force_login(MembershipFactory(workspace=other_workspace).user)

    assert "9999" not in own.content.decode()
    assert foreign.status_code == 404
    assert outsider.get(f"/w/{workspace.slug}/").status_code == 404
    assert outsider.get(f"/w/{workspace.slug}/analytics/reports/").status_code == 404


def test_segments_chart_table(workspace, owner_client, store):
    from segments.services import segment_create, starter_definitions

    with scope(workspace=workspace):
        repeat = next(d for d in starter_definitions(workspace=workspace) if d["key"] == "repeat_buyers")
        segment_create(workspace=workspace, name=repeat["name"], rules=repeat["rules"])

    response = owner_client.get(f"/w/{workspace.slug}/analytics/charts/segments.csv?{MARCH}")

    # Repeat buyers (2+ orders): A, B and C; all three ordered in March: A 50+30, B 80+40, C 20.
    assert response.content.decode().splitlines() == [
        "segment,customers,ordered,revenue,conversion",
        "Repeat buyers,3,3,220.0,1.0",
    ]


def test_retention_over_100_percent_is_explained_on_its_card(workspace, owner_client, store):
    # given D, lapsed since 2024, ordering again on Mar 31 (A came back on Mar 5)
    OrderFactory(workspace=workspace, customer=store["D"], placed_at=dt.datetime(2025, 3, 31, 8, tzinfo=dt.UTC))
    with scope(workspace=workspace):
        services.rollups_refresh(workspace=workspace, start=dt.date(2025, 3, 31), end=dt.date(2025, 3, 31))

    html = owner_client.get(f"/w/{workspace.slug}/?{MARCH}").content.decode()

    assert re.search(r'data-testid="kpi-retention">133.3%</div>', html)
    assert re.search(
        r'data-testid="kpi-note-retention">.*Over 100%: 2 lapsed customers came back\. '
        r"67% of those active at the start still are\.</div>",
        html,
    )


def test_group_charts_of_a_preset_period_read_the_stored_figures(workspace, owner_client, store):
    from analytics.models import GroupFigures

    # given figures the minute tick stored for the last 30 days (this store's orders are older, so live is empty)
    with scope(workspace=workspace):
        GroupFigures.objects.create(
            workspace=workspace,
            chart="rfm",
            period_days=30,
            end_date=workspace.today(),
            computed_at=timezone.now(),
            rows=[["Champions", 4, 2, 120.5]],
        )

    stored = owner_client.get(f"/w/{workspace.slug}/analytics/charts/rfm.csv?period=30").content.decode()
    live = owner_client.get(f"/w/{workspace.slug}/analytics/charts/rfm.csv?period=90").content.decode()

    assert stored.splitlines() == ["rfm_group,customers,ordered,revenue,conversion", "Champions,4,2,120.5,0.5"]
    assert live.splitlines() == ["rfm_group,customers,ordered,revenue,conversion"]


def test_stored_group_figures_equal_the_live_ones(workspace, store):
    from segments.services import segment_create, starter_definitions

    with scope(workspace=workspace):
        repeat = next(d for d in starter_definitions(workspace=workspace) if d["key"] == "repeat_buyers")
        segment_create(workspace=workspace, name=repeat["name"], rules=repeat["rules"])
        Customer.objects.filter(pk__in=[store["A"].pk, store["B"].pk]).update(rfm_group="Champions")
        Customer.objects.filter(pk=store["H"].pk).update(rfm_group="New")
        # orders in the last 90 days, so the figures are not empty
        for name, amount in (("A", 10), ("B", 15), ("H", 7)):
            OrderFactory(
                workspace=workspace,
                customer=store[name],
                placed_at=timezone.now() - dt.timedelta(days=3),
                total=amount,
                net_total=amount,
            )
        live = {
            (chart, days): selectors.GROUP_CHARTS[chart](
                workspace=workspace,
                date_range=selectors.DateRange(
                    start=workspace.today() - dt.timedelta(days=days - 1), end=workspace.today()
                ),
            )
            for chart in ("rfm", "segments")
            for days in selectors.GROUP_PERIODS
        }

        assert services.group_figures_refresh(workspace=workspace) == 8

        assert live[("rfm", 90)] == [("Champions", 2, 2, 25.0), ("New", 1, 1, 7.0)]
        assert live[("segments", 7)] == [("Repeat buyers", 3, 2, 25.0)]
        for (chart, days), rows in live.items():
            assert selectors.group_rows(
                workspace=workspace,
                chart=chart,
                date_range=selectors.DateRange(
                    start=workspace.today() - dt.timedelta(days=days - 1), end=workspace.today()
                ),
            ) == [list(row) for row in rows]
