"""Every write of the campaigns app: templates, campaigns and their lifecycle, consent changes from unsubscribes.

Sending itself (the Message claim protocol) is in ``campaigns.sending``, flows in ``campaigns.flows``, open/click/
unsubscribe/bounce handling in ``campaigns.tracking``, attribution in ``campaigns.attribution``.
"""

import datetime as dt
import random
from typing import Any

from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from campaigns.models import Campaign, EmailTemplate, Message, SendingPolicy, Suppression
from campaigns.rendering import RenderedEmail, render_email
from campaigns.sending import (
    add_rich_fields,
    build_email,
    campaign_finish_if_done,
    compiled_template,
    merge_context,
    sending_policy,
)
from crm.exceptions import DomainError
from crm.models import Workspace
from customers.models import ConsentStatus, Customer

BLOCK_TYPES = ("text", "image", "button", "products")


# --- consent ------------------------------------------------------------------------------------------------


def suppression_add(*, workspace: Workspace, email: str, reason: str, message: Message | None = None) -> Suppression:
    suppression, _ = Suppression.objects.get_or_create(
        workspace=workspace, email=email.strip().lower(), defaults={"reason": reason, "message": message}
    )
    return suppression


def suppression_remove(*, workspace: Workspace, suppression_id: int) -> None:
    Suppression.objects.filter(workspace=workspace, pk=suppression_id).delete()


# --- templates ----------------------------------------------------------------------------------------------


def clean_blocks(blocks: Any) -> list[dict]:
    """Keep only known block types and fields, as strings; the editor posts whatever the browser sends."""
    if not isinstance(blocks, list):
        raise DomainError("Blocks must be a list.", field="blocks")
    allowed = {
        "text": ("text",),
        "image": ("src", "alt", "href"),
        "button": ("label", "url"),
        "products": ("source",),
    }
    out = []
    for index, block in enumerate(blocks, start=1):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in allowed:
            raise DomainError(f"Block {index}: unknown type “{kind}”.", field="blocks")
        cleaned = {"type": kind, **{k: str(block.get(k, ""))[:5000] for k in allowed[kind]}}
        for url_field in ("src", "href", "url"):
            value = cleaned.get(url_field, "")
            if value and not value.startswith(("https://", "http://")) and "{{" not in value:
                raise DomainError(f"Block {index}: the {url_field} must start with https://", field="blocks")
        if kind == "products" and cleaned["source"] not in ("recommendations", "cart"):
            cleaned["source"] = "recommendations"
        out.append(cleaned)
    return out


def template_save(
    *, workspace: Workspace, template: EmailTemplate | None = None, user=None, **fields: Any
) -> EmailTemplate:
    """Create or update a template after proving it compiles (unknown merge fields are refused with a message)."""
    template = template or EmailTemplate(workspace=workspace, created_by=user)
    if "blocks" in fields:
        fields["blocks"] = clean_blocks(fields["blocks"])
    for name, value in fields.items():
        setattr(template, name, value)
    if not template.name.strip():
        raise DomainError("A template needs a name.", field="name")
    if not template.subject.strip():
        raise DomainError("A template needs a subject.", field="subject")
    if EmailTemplate.objects.filter(workspace=workspace, name=template.name).exclude(pk=template.pk).exists():
        raise DomainError("Another template already has this name.", field="name")
    compiled_template(workspace=workspace, template=template, track=False)  # raises DomainError on bad fields
    template.save()
    return template


def template_preview(*, workspace: Workspace, template: EmailTemplate, customer: Customer | None) -> RenderedEmail:
    """What ``customer`` would receive, links unwrapped and no pixel (a preview must not count as an open)."""
    policy = sending_policy(workspace=workspace)
    compiled = compiled_template(
        workspace=workspace, template=template, track=False, postal_address=policy.postal_address
    )
    values = _customer_values(customer)
    context = merge_context(workspace=workspace, customer=values, template=template, token="preview")
    if customer is not None:
        add_rich_fields(workspace=workspace, compiled=compiled, contexts={customer.pk: context})
    else:
        context.update(
            cart_lines_html="<p><em>(cart lines appear here)</em></p>",
            cart_lines_text="(cart lines)",
            recommendations_html="<p><em>(recommended products appear here)</em></p>",
            recommendations_text="(recommendations)",
        )
    return render_email(compiled, context)


def _customer_values(customer: Customer | None) -> dict:
    if customer is None:
        return {"id": 0, "email": "", "first_name": "", "last_name": "", "top_categories": []}
    return {
        "id": customer.pk,
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "city": customer.city,
        "loyalty_points": customer.loyalty_points,
        "top_categories": customer.top_categories,
        "rfm_group": customer.rfm_group,
        "orders_count": customer.orders_count,
    }


def template_send_test(
    *, workspace: Workspace, template: EmailTemplate, to_email: str, customer: Customer | None = None
) -> None:
    """Send the template, personalised as ``customer`` (or with fallbacks), to any address. Not a marketing
    send: no Message row, no consent check, subject marked [Test]."""
    to_email = to_email.strip()
    if "@" not in to_email:
        raise DomainError("Enter an email address to send the test to.", field="to_email")
    rendered = template_preview(workspace=workspace, template=template, customer=customer)
    rendered = RenderedEmail(subject=f"[Test] {rendered.subject}", html=rendered.html, text=rendered.text)
    policy = sending_policy(workspace=workspace)
    from django.conf import settings

    email = build_email(
        rendered=rendered,
        to=to_email,
        token="test",
        from_email=policy.from_email or settings.DEFAULT_FROM_EMAIL,
        connection=get_connection(),
    )
    email.send()


def policy_update(*, workspace: Workspace, **fields: Any) -> SendingPolicy:
    policy = sending_policy(workspace=workspace)
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.save()
    return policy


# --- campaigns ----------------------------------------------------------------------------------------------


def campaign_save(*, workspace: Workspace, campaign: Campaign | None = None, user=None, **fields: Any) -> Campaign:
    campaign = campaign or Campaign(workspace=workspace, created_by=user)
    if campaign.pk and campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
        raise DomainError("A campaign that has started sending cannot be edited.")
    for name, value in fields.items():
        setattr(campaign, name, value)
    if not campaign.audience_segment_ids:
        raise DomainError("Choose at least one segment to send to.", field="audience_segment_ids")
    if not (1 <= campaign.ab_sample_percent <= 50):
        raise DomainError("The A/B sample must be between 1 and 50 percent.", field="ab_sample_percent")
    campaign.save()
    return campaign


def campaign_audience_ids(*, workspace: Workspace, campaign: Campaign) -> list[int]:
    """Customers in any audience segment, minus the exclusion segments, with email consent and not suppressed.

    Each part is one single-table query and the set algebra happens here: nested ``IN (subquery)`` chains
    over freshly imported (not yet analysed) tables made PostgreSQL pick nested loops that ran for minutes.
    """
    from segments.models import Segment
    from segments.selectors import segment_customers

    def members(ids: list[int]) -> set[int]:
        found: set[int] = set()
        for segment in Segment.objects.filter(workspace=workspace, id__in=ids):
            found.update(segment_customers(workspace=workspace, segment=segment).values_list("id", flat=True))
        return found

    wanted = members(campaign.audience_segment_ids) - members(campaign.excluded_segment_ids)
    if not wanted:
        return []
    suppressed = set(Suppression.objects.filter(workspace=workspace).values_list("email", flat=True))
    eligible = (
        Customer.objects.filter(
            workspace=workspace,
            email_consent=ConsentStatus.SUBSCRIBED,
            merged_into__isnull=True,
            erased_at__isnull=True,
        )
        .exclude(email="")
        .values_list("id", "email")
    )
    return sorted(
        cid
        for cid, email in eligible.iterator(chunk_size=5000)
        if cid in wanted and email.strip().lower() not in suppressed
    )


@transaction.atomic
def campaign_launch(
    *, workspace: Workspace, campaign: Campaign, now: dt.datetime | None = None, dispatch: bool = True
) -> int:
    """Freeze the audience into Message rows (one per recipient, unique) and start sending. Returns recipients.

    ``dispatch=False`` leaves the sending to the next minute tick (the benchmark drives the send loop itself)."""
    now = now or timezone.now()
    locked = Campaign.objects.select_for_update().get(workspace=workspace, pk=campaign.pk)
    if locked.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
        raise DomainError(f"This campaign is already {locked.get_status_display().lower()}.")
    campaign_template_check(workspace=workspace, campaign=locked)
    customer_ids = campaign_audience_ids(workspace=workspace, campaign=locked)
    if not customer_ids:
        raise DomainError("Nobody in this audience can receive marketing email (consent, suppression).")
    variants: dict[int, str] = {}
    waiting: set[int] = set()
    if locked.is_ab_test and len(customer_ids) >= 4:
        shuffled = customer_ids[:]
        random.Random(locked.pk).shuffle(shuffled)
        sample = max(2, round(len(shuffled) * locked.ab_sample_percent / 100))
        sample -= sample % 2
        for index, customer_id in enumerate(shuffled[:sample]):
            variants[customer_id] = "A" if index % 2 == 0 else "B"
        waiting = set(shuffled[sample:])
    elif locked.is_ab_test:
        for index, customer_id in enumerate(customer_ids):
            variants[customer_id] = "A" if index % 2 == 0 else "B"
    for start in range(0, len(customer_ids), 2000):
        Message.objects.bulk_create(
            [
                Message(
                    workspace=workspace,
                    campaign=locked,
                    customer_id=customer_id,
                    send_after=now,
                    variant=variants.get(customer_id, ""),
                    status=Message.Status.WAITING_WINNER if customer_id in waiting else Message.Status.QUEUED,
                )
                for customer_id in customer_ids[start : start + 2000]
            ],
            ignore_conflicts=True,
        )
    locked.status = Campaign.Status.SENDING
    locked.started_at = now
    locked.recipients_count = len(customer_ids)
    locked.save(update_fields=["status", "started_at", "recipients_count"])
    campaign.status, campaign.started_at, campaign.recipients_count = locked.status, now, len(customer_ids)
    if dispatch:
        _enqueue_send(workspace=workspace, campaign_id=locked.pk)
    return len(customer_ids)


def campaign_template_check(*, workspace: Workspace, campaign: Campaign) -> None:
    compiled_template(workspace=workspace, template=campaign.template)
    if campaign.subject_b:
        compiled_template(workspace=workspace, template=campaign.template, subject=campaign.subject_b)


def _enqueue_send(*, workspace: Workspace, campaign_id: int | None = None) -> None:
    from campaigns.tasks import messages_send

    transaction.on_commit(lambda: messages_send.delay(workspace.pk, campaign_id))


def campaign_schedule(*, workspace: Workspace, campaign: Campaign, at: dt.datetime) -> Campaign:
    if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
        raise DomainError("Only a draft can be scheduled.")
    if at <= timezone.now():
        raise DomainError("Choose a time in the future.", field="scheduled_at")
    campaign_template_check(workspace=workspace, campaign=campaign)
    Campaign.objects.filter(workspace=workspace, pk=campaign.pk).update(
        status=Campaign.Status.SCHEDULED, scheduled_at=at
    )
    campaign.status, campaign.scheduled_at = Campaign.Status.SCHEDULED, at
    return campaign


def campaign_unschedule(*, workspace: Workspace, campaign: Campaign) -> None:
    Campaign.objects.filter(workspace=workspace, pk=campaign.pk, status=Campaign.Status.SCHEDULED).update(
        status=Campaign.Status.DRAFT, scheduled_at=None
    )


def campaigns_launch_due(*, workspace: Workspace, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    launched = 0
    for campaign in Campaign.objects.filter(
        workspace=workspace, status=Campaign.Status.SCHEDULED, scheduled_at__lte=now
    ):
        try:
            campaign_launch(workspace=workspace, campaign=campaign, now=now)
            launched += 1
        except DomainError as error:
            Campaign.objects.filter(workspace=workspace, pk=campaign.pk).update(status=Campaign.Status.DRAFT)
            import logging

            logging.getLogger(__name__).warning("scheduled campaign %s not sent: %s", campaign.pk, error.message)
    return launched


def campaign_pause(*, workspace: Workspace, campaign: Campaign) -> None:
    # Workers only claim rows of campaigns in "sending", so pausing stops the next batch; rows already claimed finish.
    if not Campaign.objects.filter(workspace=workspace, pk=campaign.pk, status=Campaign.Status.SENDING).update(
        status=Campaign.Status.PAUSED
    ):
        raise DomainError("Only a campaign that is sending can be paused.")


def campaign_resume(*, workspace: Workspace, campaign: Campaign) -> None:
    if not Campaign.objects.filter(workspace=workspace, pk=campaign.pk, status=Campaign.Status.PAUSED).update(
        status=Campaign.Status.SENDING
    ):
        raise DomainError("Only a paused campaign can be resumed.")
    _enqueue_send(workspace=workspace, campaign_id=campaign.pk)


@transaction.atomic
def campaign_cancel(*, workspace: Workspace, campaign: Campaign, now: dt.datetime | None = None) -> int:
    """Stop for good: every message not yet claimed is cancelled. Returns how many were cancelled."""
    updated = Campaign.objects.filter(
        workspace=workspace,
        pk=campaign.pk,
        status__in=[Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.SCHEDULED, Campaign.Status.DRAFT],
    ).update(status=Campaign.Status.CANCELLED, finished_at=now or timezone.now())
    if not updated:
        raise DomainError("This campaign has already finished.")
    return Message.objects.filter(
        workspace=workspace, campaign=campaign, status__in=[Message.Status.QUEUED, Message.Status.WAITING_WINNER]
    ).update(status=Message.Status.CANCELLED)


def campaign_ab_decide(
    *, workspace: Workspace, campaign: Campaign, now: dt.datetime | None = None, dispatch: bool = True
) -> str:
    """After ``ab_wait_hours``, pick the subject with the better open (or click) rate and send it to the rest.
    Ties go to A. Returns the winner, or "" when it is not time yet."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_related("template").get(workspace=workspace, pk=campaign.pk)
    if not campaign.is_ab_test or campaign.ab_winner or campaign.status != Campaign.Status.SENDING:
        return campaign.ab_winner
    if campaign.started_at and now < campaign.started_at + dt.timedelta(hours=campaign.ab_wait_hours):
        return ""
    metric = "opened_at" if campaign.ab_metric == Campaign.Metric.OPEN else "clicked_at"
    rows = (
        Message.objects.filter(
            workspace=workspace, campaign=campaign, variant__in=["A", "B"], status=Message.Status.SENT
        )
        .values("variant")
        .annotate(sent=Count("id"), hits=Count("id", filter=Q(**{f"{metric}__isnull": False})))
    )
    rates = {row["variant"]: row["hits"] / row["sent"] for row in rows if row["sent"]}
    winner = "B" if rates.get("B", 0) > rates.get("A", 0) else "A"
    with transaction.atomic():
        if not Campaign.objects.filter(workspace=workspace, pk=campaign.pk, ab_winner="").update(
            ab_winner=winner, ab_decided_at=now
        ):
            return Campaign.objects.get(workspace=workspace, pk=campaign.pk).ab_winner
        Message.objects.filter(workspace=workspace, campaign=campaign, status=Message.Status.WAITING_WINNER).update(
            status=Message.Status.QUEUED, variant=winner, send_after=now
        )
        if dispatch:
            _enqueue_send(workspace=workspace, campaign_id=campaign.pk)
    campaign.ab_winner, campaign.ab_decided_at = winner, now
    return winner


def campaigns_decide_due(*, workspace: Workspace, now: dt.datetime | None = None) -> None:
    for campaign in Campaign.objects.filter(workspace=workspace, status=Campaign.Status.SENDING, ab_winner="").exclude(
        subject_b=""
    ):
        campaign_ab_decide(workspace=workspace, campaign=campaign, now=now)
        campaign_finish_if_done(workspace=workspace, campaign_id=campaign.pk, now=now)
