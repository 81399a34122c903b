"""CSAT after a ticket is solved, NPS after an order; one click from the email answers, a comment is optional.

A survey is a row scheduled for ``send_after``; the minute tick finds due rows and a task sends each one,
claiming it first (scheduled -> sending) so a duplicated task never sends twice. New orders are read by cursor
(the highest order id already considered), the way flows read events, so nothing hooks into the order upsert.
"""

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from crm.exceptions import DomainError
from crm.models import Workspace
from support.models import Survey, SurveyKind, SurveyStatus, Ticket

logger = logging.getLogger(__name__)


def survey_schedule_csat(*, workspace: Workspace, ticket: Ticket, now: dt.datetime | None = None) -> Survey | None:
    from support.services import support_settings_for

    config = support_settings_for(workspace=workspace)
    if not config.is_csat_enabled or ticket.customer_id is None or not ticket.requester_email:
        return None
    send_after = (now or timezone.now()) + dt.timedelta(minutes=config.csat_delay_minutes)
    survey, created = Survey.objects.get_or_create(
        workspace=workspace,
        kind=SurveyKind.CSAT,
        ticket=ticket,
        defaults={"customer_id": ticket.customer_id, "send_after": send_after},
    )
    if not created and survey.status == SurveyStatus.SCHEDULED:
        # Solved again after a reopen: ask about the latest resolution.
        survey.send_after = send_after
        survey.save(update_fields=["send_after"])
    return survey


def surveys_schedule_nps_for_new_orders(*, workspace: Workspace, now: dt.datetime | None = None) -> int:
    """Schedule an NPS survey for each customer with an order since the cursor, at most once per quiet period."""
    from customers.models import Order, OrderStatus
    from support.services import support_settings_for

    config = support_settings_for(workspace=workspace)
    orders = list(
        Order.objects.filter(workspace=workspace, pk__gt=config.nps_order_cursor)
        .exclude(status=OrderStatus.CANCELLED)
        .exclude(customer=None)
        .order_by("pk")
        .values("pk", "customer_id", "placed_at")[:5000]
    )
    if not orders:
        return 0
    created = 0
    if config.is_nps_enabled:
        now = now or timezone.now()
        quiet_since = now - dt.timedelta(days=config.nps_quiet_days)
        recently_asked = set(
            Survey.objects.filter(
                workspace=workspace, kind=SurveyKind.NPS, customer_id__in={o["customer_id"] for o in orders}
            )
            .filter(created_at__gte=quiet_since)
            .values_list("customer_id", flat=True)
        )
        for order in orders:
            # Orders imported from history are not surveyed: only those placed within the delay window + a day.
            if order["customer_id"] in recently_asked or order["placed_at"] < now - dt.timedelta(
                days=config.nps_delay_days + 1
            ):
                continue
            recently_asked.add(order["customer_id"])
            try:
                with transaction.atomic():
                    Survey.objects.create(
                        workspace=workspace,
                        kind=SurveyKind.NPS,
                        customer_id=order["customer_id"],
                        order_id=order["pk"],
                        send_after=order["placed_at"] + dt.timedelta(days=config.nps_delay_days),
                    )
                created += 1
            except IntegrityError:
                continue
    config.nps_order_cursor = orders[-1]["pk"]
    config.save(update_fields=["nps_order_cursor", "updated_at"])
    return created


def surveys_due(*, workspace: Workspace, now: dt.datetime | None = None) -> list[int]:
    return list(
        Survey.objects.filter(
            workspace=workspace, status=SurveyStatus.SCHEDULED, send_after__lte=now or timezone.now()
        ).values_list("pk", flat=True)[:500]
    )


def survey_url(survey: Survey, score: int | None = None) -> str:
    if score is None:
        return settings.SITE_URL + reverse("support_public:survey", kwargs={"token": survey.token})
    return settings.SITE_URL + reverse("support_public:survey_answer", kwargs={"token": survey.token, "score": score})


def survey_send(*, workspace: Workspace, survey_id: int, now: dt.datetime | None = None) -> bool:
    """Send one due survey by email. Returns False when another worker has it or it is not due."""
    now = now or timezone.now()
    claimed = Survey.objects.filter(
        workspace=workspace, pk=survey_id, status=SurveyStatus.SCHEDULED, send_after__lte=now
    ).update(status=SurveyStatus.SENDING)
    if not claimed:
        return False
    survey = Survey.objects.select_related("customer", "ticket").get(workspace=workspace, pk=survey_id)
    customer, ticket = survey.customer, survey.ticket
    email_address = (ticket.requester_email if ticket is not None else "") or customer.email
    if not email_address or customer.erased_at is not None:
        Survey.objects.filter(workspace=workspace, pk=survey_id).update(status=SurveyStatus.SKIPPED, error="no email")
        return False
    context = {
        "survey": survey,
        "workspace": workspace,
        "customer": customer,
        "choices": [(score, survey_url(survey, score)) for score in survey.scale],
        "page_url": survey_url(survey),
    }
    if survey.kind == SurveyKind.CSAT and ticket is not None:
        subject = f"How did we do? {ticket.reference} {ticket.subject}"
    else:
        subject = f"How likely are you to recommend {workspace.name}?"
    email = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("support/email/survey.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email_address],
        headers={"Auto-Submitted": "auto-generated"},
    )
    email.attach_alternative(render_to_string("support/email/survey.html", context), "text/html")
    try:
        email.send()
    except Exception as error:
        Survey.objects.filter(workspace=workspace, pk=survey_id).update(
            status=SurveyStatus.SCHEDULED, error=str(error)[:255]
        )
        raise
    Survey.objects.filter(workspace=workspace, pk=survey_id).update(status=SurveyStatus.SENT, sent_at=now, error="")
    return True


@transaction.atomic
def survey_answer(*, workspace: Workspace, survey: Survey, score: int, comment: str | None = None) -> Survey:
    """Record (or change) the score from the one-click link; the first answer goes on the customer's timeline."""
    from customers.services import customer_update_support_signals, event_record

    if score not in survey.scale:
        raise DomainError(f"The score must be between {survey.scale[0]} and {survey.scale[-1]}.", field="score")
    if survey.status in (SurveyStatus.SKIPPED, SurveyStatus.FAILED):
        raise DomainError("This survey is no longer open.")
    now = timezone.now()
    survey.score = score
    survey.answered_at = now
    survey.status = SurveyStatus.ANSWERED
    fields = ["score", "answered_at", "status"]
    if comment is not None:
        survey.comment = comment.strip()[:2000]
        fields.append("comment")
    survey.save(update_fields=fields)
    signal = {"csat_score": score} if survey.kind == SurveyKind.CSAT else {"nps_score": score}
    customer_update_support_signals(workspace=workspace, customer_id=survey.customer_id, at=now, **signal)
    properties = {"survey": survey.kind, "score": score, "survey_id": survey.pk}
    if survey.ticket_id:
        properties["ticket_id"] = survey.ticket_id
    if survey.order_id:
        properties["order_id"] = survey.order_id
    event_record(
        workspace=workspace,
        customer=survey.customer,
        type="survey_answered",
        occurred_at=now,
        properties=properties,
        external_id=f"survey:{survey.pk}",
    )
    return survey


def nps_category(score: int | None) -> str:
    if score is None:
        return ""
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
