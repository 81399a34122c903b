from django.urls import path

from analytics import views
from analytics.charts import CHARTS
from analytics.reports import REPORTS

app_name = "analytics"
# One path per chart (the chart is fixed by the URL, not a URL argument), so nothing here takes an object id.
urlpatterns = [
    path("reports/", views.reports, name="reports"),
    path("predictions/", views.predictions, name="predictions"),
    path("predictions/refit/", views.predictions_refit, name="predictions_refit"),
    path("rollups/rebuild/", views.rollups_rebuild, name="rollups_rebuild"),
    *[path(f"charts/{name}/", views.chart, {"chart_name": name}, name=f"chart-{name}") for name in CHARTS],
    *[path(f"charts/{name}.csv", views.chart_csv, {"chart_name": name}, name=f"chart-{name}-csv") for name in CHARTS],
    *[
        path(f"reports/{name}.csv", views.report_csv, {"report_name": name}, name=f"report-{name}-csv")
        for name in REPORTS
    ],
]
