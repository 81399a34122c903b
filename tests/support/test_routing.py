"""Routing: rules in order (category, segment, language, order value), then fewest open among the team's available
reps, then round-robin over everyone available."""

import datetime as dt
import sys
import types
from decimal import Decimal

import pytest
from django.utils import timezone

from support import services
from support.models import RoutingRule
from support.routing import ticket_route
from tests.factories import CustomerFactory, MembershipFactory, OrderFactory
from tests.support.factories import RoutingRuleFactory, TeamFactory, TicketFactory


def rep(workspace, name, *, available=True, role="support"):
    return MembershipFactory(workspace=workspace, role=role, is_available=available, user__full_name=name)


def team_of(workspace, name, *members):
    team = TeamFactory(workspace=workspace, name=name)
    services.team_save(workspace=workspace, name=name, member_ids=[m.pk for m in members], team=team)
    return team


def new_ticket(workspace, **kwargs):
    kwargs.setdefault("customer", CustomerFactory(workspace=workspace))
    return services.ticket_create(workspace=workspace, subject="Help", body_text="Please help", **kwargs)


def test_first_matching_rule_in_order_wins(in_scope):
    ann, bob = rep(in_scope, "Ann"), rep(in_scope, "Bob")
    returns = team_of(in_scope, "Returns", ann)
    general = team_of(in_scope, "General", bob)
    RoutingRuleFactory(
        workspace=in_scope,
        position=20,
        team=general,
        condition="category",
        value="Returns & refunds",
        name="catch-all returns",
    )
    RoutingRuleFactory(
        workspace=in_scope,
        position=10,
        team=returns,
        condition="category",
        value="returns & refunds",
        name="returns desk",
    )

    ticket = new_ticket(in_scope, category="Returns & refunds")

    assert (ticket.team, ticket.assignee) == (returns, ann)
    assert ticket.routing_note == "rule “returns desk” → Returns, fewest open: Ann"


def test_load_balanced_to_the_available_rep_with_fewest_open_tickets(in_scope):
    ann, bob, cy = rep(in_scope, "Ann"), rep(in_scope, "Bob"), rep(in_scope, "Cy", available=False)
    team = team_of(in_scope, "Senior", ann, bob, cy)
    RoutingRuleFactory(workspace=in_scope, team=team, condition="language", value="fr")
    TicketFactory(workspace=in_scope, assignee=ann, status="open")
    TicketFactory(workspace=in_scope, assignee=ann, status="pending")
    TicketFactory(workspace=in_scope, assignee=bob, status="open")
    TicketFactory(workspace=in_scope, assignee=bob, status="solved")  # solved ones do not count

    ticket = new_ticket(in_scope, customer=CustomerFactory(workspace=in_scope, language="fr-CA"))

    assert ticket.assignee == bob  # 1 open against Ann's 2; Cy is away


def test_ties_go_to_the_rep_assigned_least_recently(in_scope):
    ann, bob = rep(in_scope, "Ann"), rep(in_scope, "Bob")
    team = team_of(in_scope, "Desk", ann, bob)
    RoutingRuleFactory(workspace=in_scope, team=team, condition="category", value="Shipping")
    now = timezone.now()
    TicketFactory(workspace=in_scope, assignee=ann, status="solved", assigned_at=now - dt.timedelta(minutes=5))
    TicketFactory(workspace=in_scope, assignee=bob, status="solved", assigned_at=now - dt.timedelta(hours=2))

    assert new_ticket(in_scope, category="Shipping").assignee == bob
    assert new_ticket(in_scope, category="Shipping").assignee == ann  # now Bob has one open


def test_order_value_rule(in_scope):
    ann, _bob = rep(in_scope, "Ann"), rep(in_scope, "Bob")
    big = team_of(in_scope, "Big orders", ann)
    RoutingRuleFactory(workspace=in_scope, team=big, condition="order_value", value="500", set_priority="high")
    customer = CustomerFactory(workspace=in_scope)
    small_order = OrderFactory(workspace=in_scope, customer=customer, total=Decimal("499.99"))
    large_order = OrderFactory(workspace=in_scope, customer=customer, total=Decimal("500.00"))

    small = new_ticket(in_scope, customer=customer, order=small_order)
    large = new_ticket(in_scope, customer=customer, order=large_order)

    assert small.team is None
    assert (large.team, large.assignee, large.priority) == (big, ann, "high")


def test_segment_rule_asks_the_segments_app(in_scope, monkeypatch):
    _ann, bob = rep(in_scope, "Ann"), rep(in_scope, "Bob")
    senior = team_of(in_scope, "Senior", bob)
    vip, regular = CustomerFactory(workspace=in_scope), CustomerFactory(workspace=in_scope)
    RoutingRuleFactory(workspace=in_scope, team=senior, condition="segment", segment_id=42, value="")
    calls = []

    def fake_membership(*, workspace, segment_id, customer_id):
        calls.append((segment_id, customer_id))
        return customer_id == vip.pk

    monkeypatch.setattr("support.routing.customer_in_segment", fake_membership)

    assert new_ticket(in_scope, customer=vip).team == senior
    assert new_ticket(in_scope, customer=regular).team is None
    assert calls == [(42, vip.pk), (42, regular.pk)]


def test_segment_rule_with_the_real_segments_app(in_scope):
    from segments.services import segment_create_static

    _ann, bob = rep(in_scope, "Ann"), rep(in_scope, "Bob")
    senior = team_of(in_scope, "Senior", bob)
    vip, regular = CustomerFactory(workspace=in_scope), CustomerFactory(workspace=in_scope)
    vips = segment_create_static(workspace=in_scope, name="VIPs", customer_ids=[vip.pk])
    RoutingRuleFactory(workspace=in_scope, team=senior, condition="segment", segment_id=vips.pk, value="")

    assert (new_ticket(in_scope, customer=vip).team, new_ticket(in_scope, customer=vip).assignee) == (senior, bob)
    assert new_ticket(in_scope, customer=regular).team is None


def test_segment_rule_without_the_segments_function_does_not_match(in_scope, monkeypatch):
    from support.routing import customer_in_segment

    monkeypatch.setitem(sys.modules, "segments.selectors", types.SimpleNamespace())
    import segments

    monkeypatch.setattr(segments, "selectors", types.SimpleNamespace(), raising=False)

    assert customer_in_segment(workspace=in_scope, segment_id=1, customer_id=1) is False


def test_no_rule_round_robins_over_all_available_reps(in_scope):
    ann, bob = rep(in_scope, "Ann"), rep(in_scope, "Bob")
    rep(in_scope, "Vera Viewer", role="viewer")
    rep(in_scope, "Mo Marketer", role="marketer")

    assignees = [new_ticket(in_scope).assignee for _ in range(4)]

    assert assignees == [ann, bob, ann, bob]


def test_nobody_available_leaves_the_ticket_unassigned(in_scope):
    rep(in_scope, "Ann", available=False)

    ticket = new_ticket(in_scope)

    assert ticket.assignee is None and ticket.status == "new"
    assert ticket.routing_note == "nobody available: left unassigned"


def test_switching_availability_takes_a_rep_out_of_rotation(in_scope):
    ann, bob = rep(in_scope, "Ann"), rep(in_scope, "Bob")
    ann.is_available = False
    ann.save(update_fields=["is_available"])

    assert {new_ticket(in_scope).assignee for _ in range(3)} == {bob}


def test_default_team_is_used_when_no_rule_matches(in_scope):
    rep(in_scope, "Ann")
    bob = rep(in_scope, "Bob")
    first_line = team_of(in_scope, "First line", bob)
    config = services.support_settings_for(workspace=in_scope)
    config.default_team = first_line
    config.save()

    ticket = new_ticket(in_scope)

    assert (ticket.team, ticket.assignee) == (first_line, bob)


def test_routing_decision_for_an_existing_ticket(in_scope):
    ann = rep(in_scope, "Ann")
    ticket = TicketFactory(workspace=in_scope, category="Billing")

    decision = ticket_route(workspace=in_scope, ticket=ticket)

    assert decision.assignee == ann and decision.rule is None


@pytest.mark.parametrize(
    ("condition", "value", "message"),
    [
        ("order_value", "lots", "'lots' is not an amount"),
        ("category", " ", "Enter the value"),
        ("segment", "", "Choose a segment"),
    ],
)
def test_bad_rules_are_refused_with_the_field(in_scope, condition, value, message):
    from crm.exceptions import DomainError
    from support.routing import routing_rule_save

    with pytest.raises(DomainError, match=message):
        routing_rule_save(
            workspace=in_scope, name="x", condition=condition, value=value, team=TeamFactory(workspace=in_scope)
        )
    assert RoutingRule.objects.count() == 0
