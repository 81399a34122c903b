"""The support dashboard: SQL pulls the rows of the period (a selector), pandas turns them into figures (pure
functions, tested without the database), plotly draws the daily volume."""

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
from django.db.models import Q
from django.utils import timezone

from crm.models import Workspace
from support.models import UNRESOLVED_STATUSES, Survey, SurveyKind, SurveyStatus, Ticket
from support.selectors import nps_score, overdue_q

TICKET_COLUMNS = [
    "pk",
    "created_at",
    "first_responded_at",
    "solved_at",
    "status",
    "assignee_id",
    "first_response_due_at",
    "resolution_due_at",
]


def tickets_frame(*, workspace: Workspace, since: dt.datetime) -> pd.DataFrame:
    rows = Ticket.objects.filter(workspace=workspace, created_at__gte=since).values_list(*TICKET_COLUMNS)
    return pd.DataFrame.from_records(list(rows), columns=TICKET_COLUMNS)


def _hours(delta: pd.Series) -> float | None:
    delta = delta.dropna()
    return round(delta.dt.total_seconds().median() / 3600, 1) if len(delta) else None


def ticket_figures(frame: pd.DataFrame, *, now: dt.datetime) -> dict:
    """Volume, median first response / resolution (hours), and how many broke their SLA in the period."""
    if frame.empty:
        return {"volume": 0, "first_response_hours": None, "resolution_hours": None, "breaches": 0, "solved": 0}
    frame = frame.copy()
    for column in ("created_at", "first_responded_at", "solved_at", "first_response_due_at", "resolution_due_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("us")
    now_ts = pd.Timestamp(now).tz_convert("UTC").as_unit("us")
    responded_by = frame["first_responded_at"].fillna(now_ts)
    solved_by = frame["solved_at"].fillna(now_ts)
    breached = (responded_by > frame["first_response_due_at"]) | (solved_by > frame["resolution_due_at"])
    return {
        "volume": int(len(frame)),
        "first_response_hours": _hours(frame["first_responded_at"] - frame["created_at"]),
        "resolution_hours": _hours(frame["solved_at"] - frame["created_at"]),
        "breaches": int(breached.fillna(False).sum()),
        "solved": int(frame["solved_at"].notna().sum()),
    }


def per_rep_figures(frame: pd.DataFrame, csat: pd.DataFrame, names: dict[int, str]) -> list[dict]:
    if frame.empty:
        return []
    frame = frame.dropna(subset=["assignee_id"]).copy()
    if frame.empty:
        return []
    frame["first_response"] = pd.to_datetime(frame["first_responded_at"], utc=True) - pd.to_datetime(
        frame["created_at"], utc=True
    )
    rows = []
    for assignee_id, group in frame.groupby("assignee_id"):
        rep_csat = csat[csat["assignee_id"] == assignee_id]["score"] if not csat.empty else pd.Series(dtype=float)
        rows.append(
            {
                "name": names.get(int(assignee_id), f"#{int(assignee_id)}"),
                "assigned": int(len(group)),
                "open": int(group["status"].isin(list(UNRESOLVED_STATUSES)).sum()),
                "solved": int(group["solved_at"].notna().sum()),
                "first_response_hours": _hours(group["first_response"]),
                "csat_percent": round(100 * float((rep_csat >= 4).mean()), 1) if len(rep_csat) else None,
                "csat_answers": int(len(rep_csat)),
            }
        )
    return sorted(rows, key=lambda row: (-row["assigned"], row["name"]))


def volume_figure(frame: pd.DataFrame, *, since: dt.datetime, now: dt.datetime, tz: str) -> go.Figure:
    days = pd.date_range(since.astimezone(dt.UTC).date(), now.date(), freq="D")
    if frame.empty:
        counts = pd.Series(0, index=days)
        solved = pd.Series(0, index=days)
    else:
        created = pd.to_datetime(frame["created_at"], utc=True).dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
        counts = created.value_counts().reindex(days, fill_value=0).sort_index()
        solved_at = pd.to_datetime(frame["solved_at"], utc=True).dropna()
        solved_days = solved_at.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
        solved = solved_days.value_counts().reindex(days, fill_value=0).sort_index()
    figure = go.Figure()
    figure.add_bar(x=list(days), y=counts.tolist(), name="Opened", marker_color="#3b5bdb")
    figure.add_scatter(x=list(days), y=solved.tolist(), name="Solved", mode="lines+markers", line_color="#2f9e44")
    figure.update_layout(
        margin={"l": 30, "r": 10, "t": 10, "b": 30},
        height=300,
        legend={"orientation": "h", "y": 1.1},
        plot_bgcolor="white",
        bargap=0.25,
    )
    return figure


@dataclass(frozen=True, kw_only=True)
class SupportDashboard:
    days: int
    figures: dict
    backlog: dict
    overdue: int
    per_rep: list
    csat_percent: float | None
    csat_answers: int
    nps: float | None
    nps_answers: int
    volume_json: str


def support_dashboard(*, workspace: Workspace, days: int = 30, now: dt.datetime | None = None) -> SupportDashboard:
    from crm.models import Membership

    now = now or timezone.now()
    since = now - dt.timedelta(days=days)
    frame = tickets_frame(workspace=workspace, since=since)
    open_tickets = Ticket.objects.filter(workspace=workspace, status__in=UNRESOLVED_STATUSES)
    backlog = dict.fromkeys(UNRESOLVED_STATUSES, 0)
    for status in open_tickets.values_list("status", flat=True):
        backlog[status] += 1
    surveys = list(
        Survey.objects.filter(workspace=workspace, status=SurveyStatus.ANSWERED, answered_at__gte=since).values_list(
            "kind", "score", "ticket__assignee_id"
        )
    )
    csat = pd.DataFrame(
        [(score, assignee) for kind, score, assignee in surveys if kind == SurveyKind.CSAT],
        columns=["score", "assignee_id"],
    )
    nps_scores = [score for kind, score, _ in surveys if kind == SurveyKind.NPS]
    names = {m.pk: m.user.display_name for m in Membership.objects.filter(workspace=workspace).select_related("user")}
    return SupportDashboard(
        days=days,
        figures=ticket_figures(frame, now=now),
        backlog={"total": sum(backlog.values()), **backlog},
        overdue=open_tickets.filter(Q(overdue_q(now))).count(),
        per_rep=per_rep_figures(frame, csat, names),
        csat_percent=round(100 * float((csat["score"] >= 4).mean()), 1) if len(csat) else None,
        csat_answers=len(csat),
        nps=nps_score(nps_scores),
        nps_answers=len(nps_scores),
        volume_json=volume_figure(frame, since=since, now=now, tz=workspace.timezone).to_json(),
    )
