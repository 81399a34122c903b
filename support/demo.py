"""Demo support data: teams, routing rules, canned replies and ~80 tickets over the last five weeks with their
conversations, SLA outcomes (some late), CSAT and NPS answers. Deterministic (seeded), and backdated, so no email is
sent while seeding: messages are written as already delivered."""

import datetime as dt
import random

from django.db.models import Max
from django.utils import timezone

from crm.models import Membership, Workspace
from crm.permissions import CAPABILITY_ROLES, Capability
from support import services
from support.models import (
    CannedReply,
    DeliveryStatus,
    MessageKind,
    RoutingRule,
    RuleCondition,
    Survey,
    SurveyKind,
    SurveyStatus,
    Ticket,
    TicketChannel,
    TicketMessage,
    TicketStatus,
)

SCRIPTS = {
    "Order status": [
        (
            "Where is my order?",
            "Hi, I ordered {order} last week and the tracking has not moved for four days. Can you check?",
            "Hi {name}, I checked with the carrier: your parcel was held at the sorting centre and is moving again. "
            "It should arrive within two days.",
        ),
        (
            "Order shows delivered but nothing arrived",
            "The tracking for {order} says delivered but there is no parcel.",
            "Sorry {name}! I have opened a claim with the carrier and a replacement is on its way today.",
        ),
    ],
    "Returns & refunds": [
        (
            "Return request: wrong size",
            "The jacket from {order} is too small. How do I return it for a medium?",
            "No problem, {name}. I have emailed you a prepaid return label; the medium ships as soon as we scan it.",
        ),
        (
            "Refund not received",
            "I returned my items two weeks ago and have not seen the refund yet.",
            "Hi {name}, the refund was issued yesterday; banks take 3-5 business days to show it.",
        ),
    ],
    "Shipping": [
        (
            "Do you ship to Canada?",
            "Hello, do you ship to Canada and how long does it take?",
            "Yes we do, {name}: 5-8 business days, duties included at checkout.",
        ),
        (
            "Change delivery address",
            "Can I change the delivery address on {order}? I am moving.",
            "Done, {name}: the new address is on the order and the warehouse has it.",
        ),
    ],
    "Product question": [
        (
            "Is the trail jacket waterproof?",
            "Is the trail jacket fully waterproof or just water resistant?",
            "It is fully waterproof (20k mm) with taped seams, {name}.",
        ),
        (
            "Sizing advice",
            "I am usually between M and L, which fits better for the fleece?",
            "The fleece runs slightly large, {name}: M should be right.",
        ),
    ],
    "Billing": [
        (
            "Charged twice",
            "I was charged twice for {order}! Please fix this.",
            "Sorry {name}, the second charge was an authorisation hold; it drops off within 48 hours.",
        ),
        (
            "Need an invoice",
            "Could you send a VAT invoice for {order}?",
            "Attached to this reply is your invoice, {name}.",
        ),
    ],
}
CSAT_WEIGHTS = [(5, 55), (4, 25), (3, 10), (2, 6), (1, 4)]
NPS_WEIGHTS = [(10, 22), (9, 20), (8, 16), (7, 12), (6, 8), (5, 7), (4, 5), (3, 4), (2, 3), (1, 2), (0, 1)]


def _weighted(rng: random.Random, table: list[tuple[int, int]]) -> int:
    return rng.choices([value for value, _ in table], weights=[weight for _, weight in table])[0]


def _timeline(*, workspace: Workspace, ticket: Ticket, type: str, at: dt.datetime, **properties) -> None:  # noqa: A002
    from customers.services import event_record

    event_record(
        workspace=workspace,
        customer=ticket.customer,
        type=type,
        occurred_at=at,
        properties={"ticket_id": ticket.pk, "number": ticket.number, "subject": ticket.subject, **properties},
    )


def seed(*, workspace: Workspace, tickets: int = 80, seed_value: int = 7) -> None:
    from customers.models import Customer, Order
    from customers.services import customer_update_support_signals, event_record

    if Ticket.objects.filter(workspace=workspace).exists():
        return
    rng = random.Random(seed_value)
    now = timezone.now()
    reps = list(
        Membership.objects.filter(workspace=workspace, role__in=CAPABILITY_ROLES[Capability.WORK_TICKETS])
        .select_related("user")
        .order_by("pk")
    )
    config = services.support_settings_for(workspace=workspace)
    config.reply_to_email = f"support@{workspace.slug}.example.com"
    config.nps_order_cursor = Order.objects.filter(workspace=workspace).aggregate(top=Max("pk"))["top"] or 0
    config.save()
    front = services.team_save(workspace=workspace, name="Front line", member_ids=[m.pk for m in reps])
    senior = services.team_save(
        workspace=workspace, name="VIP desk", member_ids=[m.pk for m in reps if m.role in ("owner", "admin")][:1]
    )
    config.default_team = front
    config.save(update_fields=["default_team"])
    RoutingRule.objects.bulk_create(
        [
            RoutingRule(
                workspace=workspace,
                position=10,
                name="Big spenders to the VIP desk",
                condition=RuleCondition.CUSTOMER_SPENT,
                value="1000",
                team=senior,
                set_priority="high",
            ),
            RoutingRule(
                workspace=workspace,
                position=20,
                name="Billing to the VIP desk",
                condition=RuleCondition.CATEGORY,
                value="Billing",
                team=senior,
            ),
            RoutingRule(
                workspace=workspace,
                position=30,
                name="French speakers",
                condition=RuleCondition.LANGUAGE,
                value="fr",
                team=front,
                is_active=False,
            ),
        ]
    )
    CannedReply.objects.bulk_create(
        [
            CannedReply(
                workspace=workspace,
                title="Return label",
                body="Hi {{ customer.first_name }},\n\nI have emailed you a prepaid return label for order "
                "{{ order.number }}. Drop the parcel at any post office within 30 days.\n\n{{ agent.name }}",
            ),
            CannedReply(
                workspace=workspace,
                title="Delivery times",
                body="Hi {{ customer.first_name }}, orders ship within 1 business day and arrive in 2-5 days.",
            ),
            CannedReply(
                workspace=workspace,
                title="Closing: anything else?",
                body="Is there anything else I can help with, {{ customer.first_name }}? "
                "If not, I will close ticket #{{ ticket.number }}.",
            ),
        ]
    )

    buyers = list(Customer.objects.filter(workspace=workspace).exclude(email="").filter(orders_count__gt=0)[:400])
    if not buyers:
        return
    solved_tickets: list[Ticket] = []
    for index in range(tickets):
        customer = rng.choice(buyers)
        category = rng.choice(list(SCRIPTS))
        subject, question, answer = rng.choice(SCRIPTS[category])
        order = Order.objects.filter(workspace=workspace, customer=customer).order_by("-placed_at").first()
        order_label = (order.number or order.external_id) if order else "my last order"
        age_hours = rng.uniform(0.3, 35 * 24) if index > 6 else rng.uniform(0.2, 6)
        created = now - dt.timedelta(hours=age_hours)
        ticket = services.ticket_create(
            workspace=workspace,
            subject=subject,
            body_text=question.format(order=order_label, name=customer.first_name),
            customer=customer,
            channel=rng.choices(list(TicketChannel.values), weights=[60, 30, 5, 5])[0],
            category=category,
            order=order if "{order}" in question else None,
            created_at=created,
            priority=rng.choices(["low", "normal", "high", "urgent"], weights=[15, 60, 18, 7])[0],
        )
        # Older tickets were answered, many solved; a few answers came late (SLA breaches).
        if age_hours < 3 and rng.random() < 0.7:
            Ticket.objects.filter(workspace=workspace, pk=ticket.pk).update(updated_at=created)
            continue
        rep = ticket.assignee or rng.choice(reps)
        late = rng.random() < 0.15
        first_response = created + dt.timedelta(minutes=rng.uniform(10, 240) * (8 if late else 1))
        if first_response > now:
            Ticket.objects.filter(workspace=workspace, pk=ticket.pk).update(updated_at=created)
            continue
        TicketMessage.objects.create(
            workspace=workspace,
            ticket=ticket,
            kind=MessageKind.REPLY,
            author=rep.user,
            body_html=services.text_to_html(answer.format(name=customer.first_name)),
            body_text=answer.format(name=customer.first_name),
            created_at=first_response,
            email_message_id=f"<demo-{workspace.pk}-{ticket.number}@{workspace.slug}.example.com>",
            delivery_status=DeliveryStatus.SENT,
        )
        if rng.random() < 0.2:
            TicketMessage.objects.create(
                workspace=workspace,
                ticket=ticket,
                kind=MessageKind.NOTE,
                author=rep.user,
                body_html=services.text_to_html("Checked the order in the store admin; all good."),
                body_text="Checked the order in the store admin; all good.",
                created_at=first_response,
            )
        _timeline(workspace=workspace, ticket=ticket, type="ticket_replied", at=first_response, direction="outbound")
        ticket.first_responded_at = first_response
        ticket.assignee = rep
        ticket.status = TicketStatus.OPEN
        roll = rng.random()
        last_activity = first_response
        if age_hours > 24 * 4 or (age_hours > 20 and roll < 0.7):
            solved_at = min(first_response + dt.timedelta(hours=rng.uniform(0.5, 40)), now)
            ticket.status = TicketStatus.CLOSED if age_hours > 24 * 10 else TicketStatus.SOLVED
            ticket.solved_at = solved_at
            ticket.closed_at = solved_at if ticket.status == TicketStatus.CLOSED else None
            solved_tickets.append(ticket)
            last_activity = solved_at
            _timeline(workspace=workspace, ticket=ticket, type="ticket_solved", at=solved_at, status=ticket.status)
        elif roll < 0.9:
            ticket.status = TicketStatus.PENDING
        ticket.save()
        Ticket.objects.filter(workspace=workspace, pk=ticket.pk).update(updated_at=last_activity)
        services.customer_open_tickets_refresh(workspace=workspace, customer_id=customer.pk)

    for ticket in solved_tickets:
        sent_at = ticket.solved_at + dt.timedelta(hours=1)
        answered = rng.random() < 0.6 and sent_at < now
        score = _weighted(rng, CSAT_WEIGHTS) if answered else None
        Survey.objects.create(
            workspace=workspace,
            kind=SurveyKind.CSAT,
            customer=ticket.customer,
            ticket=ticket,
            send_after=sent_at,
            sent_at=sent_at if sent_at < now else None,
            status=SurveyStatus.ANSWERED
            if answered
            else (SurveyStatus.SENT if sent_at < now else SurveyStatus.SCHEDULED),
            score=score,
            answered_at=sent_at + dt.timedelta(hours=2) if answered else None,
            comment="Quick and friendly, thanks!" if score == 5 and rng.random() < 0.3 else "",
        )
        if answered:
            customer_update_support_signals(
                workspace=workspace,
                customer_id=ticket.customer_id,
                csat_score=score,
                at=sent_at + dt.timedelta(hours=2),
            )
            _timeline(
                workspace=workspace,
                ticket=ticket,
                type="survey_answered",
                at=sent_at + dt.timedelta(hours=2),
                survey="csat",
                score=score,
            )

    recent_orders = list(
        Order.objects.filter(
            workspace=workspace, placed_at__gte=now - dt.timedelta(days=60), customer__isnull=False
        ).order_by("-placed_at")[:60]
    )
    seen: set[int] = set()
    for order in recent_orders:
        if order.customer_id in seen:
            continue
        seen.add(order.customer_id)
        send_after = order.placed_at + dt.timedelta(days=14)
        answered = send_after < now and rng.random() < 0.45
        score = _weighted(rng, NPS_WEIGHTS) if answered else None
        Survey.objects.create(
            workspace=workspace,
            kind=SurveyKind.NPS,
            customer_id=order.customer_id,
            order=order,
            send_after=send_after,
            sent_at=send_after if send_after < now else None,
            status=SurveyStatus.ANSWERED
            if answered
            else (SurveyStatus.SENT if send_after < now else SurveyStatus.SCHEDULED),
            score=score,
            answered_at=send_after + dt.timedelta(hours=5) if answered else None,
        )
        if answered:
            answered_at = send_after + dt.timedelta(hours=5)
            customer_update_support_signals(
                workspace=workspace, customer_id=order.customer_id, nps_score=score, at=answered_at
            )
            event_record(
                workspace=workspace,
                customer=order.customer,
                type="survey_answered",
                occurred_at=answered_at,
                properties={"survey": "nps", "score": score, "order_id": order.pk},
            )
