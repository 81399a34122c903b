"""Reads for the support pages, the customer card and the dashboard."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from crm.models import Membership, Workspace
from crm.permissions import CAPABILITY_ROLES, Capability
from support.models import (
    UNRESOLVED_STATUSES,
    Attachment,
    CannedReply,
    RoutingRule,
    Survey,
    SurveyKind,
    SurveyStatus,
    Team,
    Ticket,
    TicketMessage,
    TicketTag,
)

# A ticket is "close to breach" when less than this share of its target (or one hour) is left.
AT_RISK_WINDOW = dt.timedelta(hours=1)


def overdue_q(now: dt.datetime) -> Q:
    return Q(status__in=UNRESOLVED_STATUSES) & (
        Q(first_responded_at__isnull=True, first_response_due_at__lt=now) | Q(resolution_due_at__lt=now)
    )


def at_risk_q(now: dt.datetime) -> Q:
    soon = now + AT_RISK_WINDOW
    return (
        Q(status__in=UNRESOLVED_STATUSES)
        & ~overdue_q(now)
        & (Q(first_responded_at__isnull=True, first_response_due_at__lt=soon) | Q(resolution_due_at__lt=soon))
    )


@dataclass(frozen=True, kw_only=True)
class InboxFilters:
    view: str = "mine"  # mine | unassigned | team | overdue | all
    team_id: int | None = None
    q: str = ""
    status: str = ""  # "" = unresolved; "any" = every status
    priority: str = ""
    channel: str = ""
    category: str = ""
    tag: str = ""
    assignee_id: int | None = None
    customer_id: int | None = None


def ticket_list(*, workspace: Workspace, membership: Membership, filters: InboxFilters) -> QuerySet[Ticket]:
    now = timezone.now()
    tickets = Ticket.objects.filter(workspace=workspace)
    if filters.view == "mine":
        tickets = tickets.filter(assignee=membership)
    elif filters.view == "unassigned":
        tickets = tickets.filter(assignee__isnull=True)
    elif filters.view == "team" and filters.team_id:
        tickets = tickets.filter(team_id=filters.team_id)
    elif filters.view == "overdue":
        tickets = tickets.filter(overdue_q(now))
    if filters.status == "any":
        pass
    elif filters.status:
        tickets = tickets.filter(status=filters.status)
    elif filters.view != "overdue" and not filters.customer_id:
        tickets = tickets.filter(status__in=UNRESOLVED_STATUSES)
    if filters.priority:
        tickets = tickets.filter(priority=filters.priority)
    if filters.channel:
        tickets = tickets.filter(channel=filters.channel)
    if filters.category:
        tickets = tickets.filter(category=filters.category)
    if filters.tag:
        tickets = tickets.filter(Exists(TicketTag.objects.filter(ticket=OuterRef("pk"), name=filters.tag)))
    if filters.assignee_id:
        tickets = tickets.filter(assignee_id=filters.assignee_id)
    if filters.customer_id:
        tickets = tickets.filter(customer_id=filters.customer_id)
    if filters.q:
        term = filters.q.strip().lstrip("#")
        query = (
            Q(subject__icontains=term)
            | Q(requester_email__icontains=term)
            | Q(requester_name__icontains=term)
            | Q(Exists(TicketMessage.objects.filter(ticket=OuterRef("pk"), body_text__icontains=term)))
        )
        if term.isdigit():
            query |= Q(number=int(term))
        tickets = tickets.filter(query)
    return (
        tickets.select_related("customer", "assignee__user", "team")
        .annotate(
            is_overdue=ExpressionWrapper(overdue_q(now), output_field=BooleanField()),
            is_at_risk=ExpressionWrapper(at_risk_q(now), output_field=BooleanField()),
        )
        .order_by("-updated_at", "-pk")
    )


def inbox_page(*, workspace: Workspace, membership: Membership, filters: InboxFilters, size: int = 100) -> list[Ticket]:
    """The first ``size`` tickets of the inbox, each with ``tag_names`` (one query for all the tags: a
    prefetch_related through the scoped manager costs a queryset per ticket)."""
    # Two steps: the page's ids from the (workspace, updated_at) index, then only those rows with their joins;
    # one query with the joins makes PostgreSQL join every matching ticket before it sorts and cuts.
    listed = ticket_list(workspace=workspace, membership=membership, filters=filters)
    ids = list(listed.values_list("pk", flat=True)[:size])
    position = {pk: index for index, pk in enumerate(ids)}
    tickets = sorted(listed.filter(pk__in=ids), key=lambda ticket: position[ticket.pk])
    names: dict[int, list[str]] = {}
    rows = TicketTag.objects.filter(workspace=workspace, ticket_id__in=[t.pk for t in tickets]).order_by("name")
    for ticket_id, name in rows.values_list("ticket_id", "name"):
        names.setdefault(ticket_id, []).append(name)
    for ticket in tickets:
        ticket.tag_names = names.get(ticket.pk, [])  # type: ignore[attr-defined]
    return tickets


def inbox_counts(*, workspace: Workspace, membership: Membership) -> dict:
    now = timezone.now()
    open_tickets = Ticket.objects.filter(workspace=workspace, status__in=UNRESOLVED_STATUSES)
    counts = open_tickets.aggregate(
        mine=Count("pk", filter=Q(assignee=membership)),
        unassigned=Count("pk", filter=Q(assignee__isnull=True)),
        overdue=Count("pk", filter=overdue_q(now)),
        all=Count("pk"),
    )
    per_team = dict(open_tickets.order_by().values_list("team_id").annotate(count=Count("pk")))
    teams = list(Team.objects.filter(workspace=workspace))
    for team in teams:
        team.open_count = per_team.get(team.pk, 0)  # type: ignore[attr-defined]
    return {**counts, "teams": teams}


def ticket_get(*, workspace: Workspace, ticket_id: int) -> Ticket:
    ticket = (
        Ticket.objects.filter(workspace=workspace, pk=ticket_id)
        .select_related("customer", "assignee__user", "team", "order")
        .first()
    )
    if ticket is None:
        raise Http404("No such ticket")
    return ticket


def ticket_conversation(*, workspace: Workspace, ticket: Ticket) -> QuerySet[TicketMessage]:
    return (
        TicketMessage.objects.filter(workspace=workspace, ticket=ticket)
        .select_related("author")
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )


def attachment_get(*, workspace: Workspace, attachment_id: int) -> Attachment:
    attachment = Attachment.objects.filter(workspace=workspace, pk=attachment_id).first()
    if attachment is None:
        raise Http404("No such attachment")
    return attachment


def reps_for(*, workspace: Workspace) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(workspace=workspace, role__in=CAPABILITY_ROLES[Capability.WORK_TICKETS])
        .select_related("user")
        .order_by("user__full_name", "user__email")
    )


def teams_for(*, workspace: Workspace) -> QuerySet[Team]:
    return Team.objects.filter(workspace=workspace).prefetch_related("members__user")


def canned_replies_for(*, workspace: Workspace) -> QuerySet[CannedReply]:
    return CannedReply.objects.filter(workspace=workspace)


def routing_rules_for(*, workspace: Workspace) -> QuerySet[RoutingRule]:
    return RoutingRule.objects.filter(workspace=workspace).select_related("team")


@dataclass(frozen=True, kw_only=True)
class CustomerContext:
    """What a rep sees beside the conversation."""

    recent_orders: list
    open_carts: list
    past_tickets: list
    rfm_group: str
    surveys: list


def customer_context(*, workspace: Workspace, ticket: Ticket) -> CustomerContext | None:
    if ticket.customer_id is None:
        return None
    from customers.models import Cart, CartStatus, Order

    customer = ticket.customer
    assert customer is not None
    orders = list(Order.objects.filter(workspace=workspace, customer=customer).order_by("-placed_at")[:5])
    carts = list(
        Cart.objects.filter(
            workspace=workspace, customer=customer, status__in=[CartStatus.OPEN, CartStatus.ABANDONED]
        ).order_by("-last_activity_at")[:3]
    )
    past = list(
        Ticket.objects.filter(workspace=workspace, customer=customer).exclude(pk=ticket.pk).order_by("-created_at")[:5]
    )
    surveys = list(
        Survey.objects.filter(workspace=workspace, customer=customer, status=SurveyStatus.ANSWERED).order_by(
            "-answered_at"
        )[:3]
    )
    return CustomerContext(
        recent_orders=orders, open_carts=carts, past_tickets=past, rfm_group=customer.rfm_group, surveys=surveys
    )


def customer_tickets(*, workspace: Workspace, customer_id: int, limit: int = 5) -> list[Ticket]:
    return list(
        Ticket.objects.filter(workspace=workspace, customer_id=customer_id)
        .select_related("assignee__user")
        .order_by("-created_at")[:limit]
    )


def customer_orders_for_linking(*, workspace: Workspace, customer_id: int | None) -> list:
    if customer_id is None:
        return []
    from customers.models import Order

    return list(Order.objects.filter(workspace=workspace, customer_id=customer_id).order_by("-placed_at")[:20])


def survey_by_token(*, token: str) -> Survey:
    """Public lookup (no workspace in the URL): the unguessable token is the key. Called with scopes disabled."""
    survey = Survey.objects.filter(token=token).select_related("workspace", "ticket", "customer").first()
    if survey is None:
        raise Http404("No such survey")
    return survey


def nps_score(scores: list[int]) -> float | None:
    """Promoters (9-10) minus detractors (0-6), as a percentage of answers."""
    if not scores:
        return None
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return round(100 * (promoters - detractors) / len(scores), 1)


def survey_scores(*, workspace: Workspace, since: dt.datetime) -> dict:
    rows = Survey.objects.filter(workspace=workspace, status=SurveyStatus.ANSWERED, answered_at__gte=since).values_list(
        "kind", "score"
    )
    csat = [int(score) for kind, score in rows if kind == SurveyKind.CSAT and score is not None]
    nps = [int(score) for kind, score in rows if kind == SurveyKind.NPS and score is not None]
    return {
        "csat_answers": len(csat),
        # CSAT = share of 4s and 5s, the usual definition
        "csat_percent": round(100 * sum(1 for s in csat if s >= 4) / len(csat), 1) if csat else None,
        "nps_answers": len(nps),
        "nps": nps_score(nps),
    }
