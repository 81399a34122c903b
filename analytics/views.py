"""Analytics pages. The dashboard shell (KPIs from rollups) renders at once; each chart is a fragment that htmx
loads after it. Charts and reports also answer as CSV (the table behind them)."""

import csv

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST

from analytics import selectors, tasks
from analytics.charts import CHARTS, figure_json, forecast_figure, render_chart
from analytics.forms import range_from_request
from analytics.reports import REPORTS
from crm.csv_export import csv_safe
from crm.permissions import Capability, requires
from crm.urls_helpers import ws_reverse

ROLLUPS_PENDING = "Your figures are being prepared from your orders; refresh in a minute."


def _query(date_range, grain, form) -> str:
    period = form.cleaned_data.get("period", "30") if form.is_bound and form.is_valid() else "30"
    if period == "custom":
        return f"period=custom&start={date_range.start}&end={date_range.end}&grain={grain}"
    return f"period={period}&grain={grain}"


@requires(Capability.VIEW)
def dashboard(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    form, date_range, grain = range_from_request(request.GET, today=workspace.today())
    status = selectors.data_status(workspace=workspace)
    if status.needs_rollups:
        transaction.on_commit(lambda: tasks.rollups_rebuild.delay(workspace.id))
        messages.info(request, ROLLUPS_PENDING)
    overview = selectors.overview(workspace=workspace, date_range=date_range)
    query = _query(date_range, grain, form)
    charts = [
        {
            "chart": chart,
            "url": ws_reverse(request, f"analytics:chart-{chart.name}") + "?" + query,
            "csv_url": ws_reverse(request, f"analytics:chart-{chart.name}-csv") + "?" + query,
        }
        for chart in CHARTS.values()
    ]
    context = {
        "form": form,
        "overview": overview,
        "charts": charts,
        "status": status,
        "grain": grain,
        "query": query,
        "fit": selectors.model_fit(workspace=workspace),
    }
    return render(request, "analytics/dashboard.html", context)


@requires(Capability.VIEW)
def chart(request: HttpRequest, workspace_slug: str, chart_name: str) -> HttpResponse:
    workspace = request.workspace
    form, date_range, grain = range_from_request(request.GET, today=workspace.today())
    table, fig_json = render_chart(workspace=workspace, name=chart_name, date_range=date_range, grain=grain)
    query = _query(date_range, grain, form)
    context = {
        "chart": CHARTS[chart_name],
        "fig_json": fig_json,
        "rows": len(table),
        "form": form,
        "grain": grain,
        "csv_url": ws_reverse(request, f"analytics:chart-{chart_name}-csv") + "?" + query,
        "onboarding": selectors.data_status(workspace=workspace),
    }
    template = "analytics/dashboard.html#chart" if request.htmx else "analytics/chart.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _csv_response(table, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(list(table.columns))
    for row in table.itertuples(index=False):
        writer.writerow(["" if value is None or value != value else csv_safe(value) for value in row])
    return response


@requires(Capability.VIEW)
def chart_csv(request: HttpRequest, workspace_slug: str, chart_name: str) -> HttpResponse:
    workspace = request.workspace
    _, date_range, grain = range_from_request(request.GET, today=workspace.today())
    table = CHARTS[chart_name].table(workspace, date_range, grain)
    return _csv_response(table, f"{workspace.slug}-{chart_name}-{date_range.start}-{date_range.end}.csv")


def _display_rows(table) -> list[list]:
    """Table cells for the page: missing values as a dash rather than "nan"."""
    return [
        ["—" if value is None or value != value else value for value in row] for row in table.itertuples(index=False)
    ]


@requires(Capability.VIEW)
def reports(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    form, date_range, grain = range_from_request(request.GET, today=workspace.today())
    query = _query(date_range, grain, form)
    wanted = request.GET.get("report")
    if request.htmx and wanted:
        if wanted not in REPORTS:
            raise Http404("No such report")
        report = REPORTS[wanted]
        answer = report.build(workspace, date_range)
        response = render(
            request,
            "analytics/reports.html#report",
            {
                "report": report,
                "answer": answer,
                "columns": [str(column).replace("_", " ") for column in answer.table.columns],
                "rows": _display_rows(answer.table.head(25)),
                "csv_url": ws_reverse(request, f"analytics:report-{report.name}-csv") + "?" + query,
            },
        )
        patch_vary_headers(response, ["HX-Request"])
        return response
    items = [{"report": report, "url": f"{request.path}?{query}&report={report.name}"} for report in REPORTS.values()]
    return render(
        request, "analytics/reports.html", {"form": form, "items": items, "date_range": date_range, "query": query}
    )


@requires(Capability.VIEW)
def report_csv(request: HttpRequest, workspace_slug: str, report_name: str) -> HttpResponse:
    workspace = request.workspace
    _, date_range, _ = range_from_request(request.GET, today=workspace.today())
    answer = REPORTS[report_name].build(workspace, date_range)
    return _csv_response(answer.table, f"{workspace.slug}-{report_name}-{date_range.start}-{date_range.end}.csv")


@requires(Capability.VIEW)
def predictions(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    fit = selectors.model_fit(workspace=workspace)
    history, forecast = selectors.forecast_frames(workspace=workspace, fit=fit)
    fig_json = (
        figure_json(forecast_figure(history, forecast, currency=workspace.currency)) if not history.empty else None
    )
    context = {
        "fit": fit,
        "fig_json": fig_json,
        "summary": selectors.prediction_summary(workspace=workspace),
        "top_customers": selectors.customers_by_predicted_clv(workspace=workspace, limit=10),
        "at_risk": selectors.valuable_customers_at_risk(workspace=workspace, limit=10),
    }
    return render(request, "analytics/predictions.html", context)


@require_POST
@requires(Capability.MANAGE_WORKSPACE)
def predictions_refit(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    transaction.on_commit(lambda: tasks.predictions_fit.delay(workspace.id))
    messages.success(request, "The models are being fitted again; the figures update when it finishes.")
    return redirect(ws_reverse(request, "analytics:predictions"))


@require_POST
@requires(Capability.MANAGE_WORKSPACE)
def rollups_rebuild(request: HttpRequest, workspace_slug: str) -> HttpResponse:
    workspace = request.workspace
    transaction.on_commit(lambda: tasks.rollups_rebuild.delay(workspace.id))
    messages.success(request, "The dashboard figures are being rebuilt from all orders and events.")
    return redirect(ws_reverse(request, "dashboard"))
