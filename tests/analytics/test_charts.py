"""Every chart's figure is valid plotly: the builders skip plotly's validators for speed, so they are checked here."""

import datetime as dt
import json

import plotly.graph_objects as go
import pytest
from django_scopes import scope

from analytics import services
from analytics.charts import CHARTS, render_chart
from analytics.selectors import DateRange
from customers.models import Customer, Order
from tests.analytics.store import at, build_store
from tests.factories import OrderLineFactory

MARCH = DateRange(start=dt.date(2025, 3, 1), end=dt.date(2025, 3, 31))


@pytest.mark.parametrize("name", list(CHARTS))
def test_chart_figure_passes_plotly_validation(workspace, name):
    from segments.services import segment_create, starter_definitions

    customers = build_store(workspace)
    with scope(workspace=workspace):
        Customer.objects.filter(pk__in=[customers["A"].pk, customers["B"].pk]).update(rfm_group="Champions")
        repeat = next(d for d in starter_definitions(workspace=workspace) if d["key"] == "repeat_buyers")
        segment_create(workspace=workspace, name=repeat["name"], rules=repeat["rules"])
        for order in Order.objects.filter(placed_at__gte=at("2025-03-01")).exclude(status="cancelled"):
            OrderLineFactory(order=order, title="Trail Runner", category="Shoes", total=order.net_total)
        services.rollups_rebuild(workspace=workspace)
        _, fig_json = render_chart(workspace=workspace, name=name, date_range=MARCH, grain="week")

    assert fig_json is not None, "the hand-built store fills every chart"
    drawn = json.loads(fig_json)
    validated = go.Figure(drawn)  # raises ValueError on any property plotly does not know
    assert json.loads(validated.to_json()) == drawn
