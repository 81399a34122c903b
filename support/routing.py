"""Where a new ticket goes: the first matching routing rule picks a team (rules are evaluated by position); the
ticket is then load-balanced among that team's available reps (fewest open tickets, the least recently assigned on
a tie). With no team, it goes round-robin over every available rep (the least recently assigned first).
"""

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db.models import Count, F, IntegerField, Max, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from crm.models import Membership, Workspace
from crm.permissions import CAPABILITY_ROLES, Capability
from support.models import UNRESOLVED_STATUSES, RoutingRule, RuleCondition, Team, Ticket

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RoutingDecision:
    team: Team | None
    assignee: Membership | None
    rule: RoutingRule | None
    note: str
    priority: str = ""


def customer_in_segment(*, workspace: Workspace, segment_id: int, customer_id: int) -> bool:
    """Ask the segments app (a sibling; absent or half-built is tolerated: the rule just does not match)."""
    try:
        from segments import selectors as segment_selectors

        segment_customers = segment_selectors.segment_customers
        from django.apps import apps

        segment_model = apps.get_model("segments", "Segment")
    except (ImportError, AttributeError, LookupError):
        logger.warning("segments.selectors.segment_customers is not available; segment rule skipped")
        return False
    segment = segment_model.objects.filter(workspace=workspace, pk=segment_id).first()
    if segment is None:
        return False
    return segment_customers(workspace=workspace, segment=segment).filter(pk=customer_id).exists()


def _decimal(value: str) -> Decimal | None:
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError):
        return None


def rule_matches(*, workspace: Workspace, rule: RoutingRule, ticket: Ticket) -> bool:
    value = rule.value.strip()
    customer, order = ticket.customer, ticket.order
    if rule.condition == RuleCondition.CATEGORY:
        return bool(value) and ticket.category.strip().lower() == value.lower()
    if rule.condition == RuleCondition.LANGUAGE:
        language = (ticket.language or (customer.language if customer is not None else "")).lower()
        return bool(value) and language.split("-")[0] == value.lower().split("-")[0]
    if rule.condition == RuleCondition.ORDER_VALUE:
        threshold = _decimal(value)
        return threshold is not None and order is not None and order.total >= threshold
    if rule.condition == RuleCondition.CUSTOMER_SPENT:
        threshold = _decimal(value)
        return threshold is not None and customer is not None and customer.total_spent >= threshold
    if rule.condition == RuleCondition.SEGMENT:
        return (
            rule.segment_id is not None
            and ticket.customer_id is not None
            and customer_in_segment(workspace=workspace, segment_id=rule.segment_id, customer_id=ticket.customer_id)
        )
    return False


def available_reps(*, workspace: Workspace, team: Team | None = None) -> QuerySet[Membership]:
    """Available members who may work tickets, with their open ticket count and last assignment time."""
    reps = Membership.objects.filter(
        workspace=workspace, is_available=True, role__in=CAPABILITY_ROLES[Capability.WORK_TICKETS]
    )
    if team is not None:
        reps = reps.filter(support_team_links__team=team)
    # Correlated subqueries (each an index lookup on (workspace, assignee, ...)) rather than a join and GROUP BY
    # over every ticket the reps ever had.
    open_tickets = (
        Ticket.objects.filter(workspace=workspace, assignee=OuterRef("pk"), status__in=UNRESOLVED_STATUSES)
        .order_by()
        .values("assignee")
        .annotate(count=Count("pk"))
        .values("count")
    )
    last_assigned = (
        Ticket.objects.filter(workspace=workspace, assignee=OuterRef("pk"), assigned_at__isnull=False)
        .order_by("-assigned_at")
        .values("assigned_at")[:1]
    )
    return reps.annotate(
        open_count=Coalesce(Subquery(open_tickets, output_field=IntegerField()), 0),
        last_assigned_at=Subquery(last_assigned),
    ).select_related("user")


def pick_load_balanced(*, workspace: Workspace, team: Team) -> Membership | None:
    return (
        available_reps(workspace=workspace, team=team)
        .order_by("open_count", F("last_assigned_at").asc(nulls_first=True), "pk")  # type: ignore[misc]
        .first()
    )


def pick_round_robin(*, workspace: Workspace) -> Membership | None:
    return available_reps(workspace=workspace).order_by(F("last_assigned_at").asc(nulls_first=True), "pk").first()


def ticket_route(*, workspace: Workspace, ticket: Ticket) -> RoutingDecision:
    from support.services import support_settings_for

    for rule in RoutingRule.objects.filter(workspace=workspace, is_active=True).select_related("team"):
        if rule_matches(workspace=workspace, rule=rule, ticket=ticket):
            assignee = pick_load_balanced(workspace=workspace, team=rule.team)
            note = f"rule “{rule.name}” → {rule.team.name}" + (
                f", fewest open: {assignee.user.display_name}" if assignee else ", nobody available"
            )
            return RoutingDecision(team=rule.team, assignee=assignee, rule=rule, note=note, priority=rule.set_priority)
    default_team = support_settings_for(workspace=workspace).default_team
    if default_team is not None:
        assignee = pick_load_balanced(workspace=workspace, team=default_team)
        if assignee is not None:
            return RoutingDecision(
                team=default_team,
                assignee=assignee,
                rule=None,
                note=f"default team {default_team.name}, fewest open: {assignee.user.display_name}",
            )
    assignee = pick_round_robin(workspace=workspace)
    return RoutingDecision(
        team=default_team,
        assignee=assignee,
        rule=None,
        note=f"round-robin: {assignee.user.display_name}" if assignee else "nobody available: left unassigned",
    )


def routing_rule_save(
    *,
    workspace: Workspace,
    name: str,
    condition: str,
    value: str,
    team: Team,
    segment_id: int | None = None,
    set_priority: str = "",
    rule: RoutingRule | None = None,
) -> RoutingRule:
    from crm.exceptions import DomainError

    if condition not in RuleCondition.values:
        raise DomainError(f"Unknown condition {condition!r}.", field="condition")
    if condition in (RuleCondition.ORDER_VALUE, RuleCondition.CUSTOMER_SPENT) and _decimal(value) is None:
        raise DomainError(f"{value!r} is not an amount.", field="value")
    if condition == RuleCondition.SEGMENT and not segment_id:
        raise DomainError("Choose a segment.", field="segment_id")
    if condition in (RuleCondition.CATEGORY, RuleCondition.LANGUAGE) and not value.strip():
        raise DomainError("Enter the value to match.", field="value")
    if team.workspace_id != workspace.pk:
        raise DomainError("Unknown team.", field="team")
    if rule is None:
        top = RoutingRule.objects.filter(workspace=workspace).aggregate(top=Max("position"))["top"]
        rule = RoutingRule(workspace=workspace, position=(top or 0) + 10)
    rule.name = name.strip()[:100] or f"{condition} {value}"
    rule.condition, rule.value, rule.team = condition, value.strip(), team
    rule.segment_id = segment_id if condition == RuleCondition.SEGMENT else None
    rule.set_priority = set_priority
    rule.save()
    return rule


def routing_rule_move(*, workspace: Workspace, rule: RoutingRule, up: bool) -> None:
    """Swap the rule with its neighbour, then renumber 10, 20, 30... so positions stay distinct."""
    rules = list(RoutingRule.objects.filter(workspace=workspace))
    index = rules.index(rule)
    other = index - 1 if up else index + 1
    if 0 <= other < len(rules):
        rules[index], rules[other] = rules[other], rules[index]
    for position, item in enumerate(rules, start=1):
        if item.position != position * 10:
            item.position = position * 10
            item.save(update_fields=["position"])


def routing_rule_delete(*, workspace: Workspace, rule: RoutingRule) -> None:
    RoutingRule.objects.filter(workspace=workspace, pk=rule.pk).delete()


def routing_rule_set_active(*, workspace: Workspace, rule: RoutingRule, is_active: bool) -> RoutingRule:
    rule.is_active = is_active
    rule.save(update_fields=["is_active"])
    return rule
