"""Demo data for campaigns (called by ``manage.py seed_demo``): templates, the ready-made flows fed by the demo
store's recent events, and one A/B-tested campaign sent a week ago with opens, clicks, unsubscribes, a bounce and
the orders its clicks led to.

Emails are handed to Django's in-memory backend here: the demo shows results without mailing anyone. Every number
on the report still comes from the real code paths (launch, claim and send, tracking, attribution).
"""

import datetime as dt
import random

from django.core.mail import get_connection
from django.utils import timezone
from django_scopes import scope

from campaigns import flows, services, tracking
from campaigns.attribution import conversions_attribute
from campaigns.models import Campaign, EmailTemplate, Flow, Message
from campaigns.sending import messages_send_due
from crm.models import Workspace
from customers.models import Event

DEMO_FLOWS = (
    "welcome",
    "abandoned_checkout",
    "browse_abandonment",
    "post_purchase",
    "win_back",
    "birthday",
    "replenishment",
    "back_in_stock",
)
HUMAN_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0"


def seed(*, workspace: Workspace) -> None:
    with scope(workspace=workspace):
        if Campaign.objects.filter(workspace=workspace).exists():
            return  # idempotent: already seeded
        spring = _templates(workspace)
        _campaign(workspace, spring)  # first: it is backdated a week, before the flows' emails of today
        _flows(workspace)


def _templates(workspace: Workspace) -> EmailTemplate:
    spring = services.template_save(
        workspace=workspace,
        name="Spring collection",
        subject='{{ first_name | default: "Hello" }}, spring is here',
        preheader="New arrivals picked for you",
        promo_code="SPRING15",
        blocks=[
            {
                "type": "text",
                "text": '# Spring is here, {{ first_name | default: "friend" }}\n\nOur new collection '
                "just landed. As a thank-you, use {{ promo_code }} for 15% off this week.",
            },
            {"type": "button", "label": "Shop the collection", "url": "https://demo-outfitters.example/spring"},
            {"type": "products", "source": "recommendations"},
            {"type": "text", "text": "You have {{ loyalty_points }} loyalty points waiting."},
        ],
    )
    services.template_save(
        workspace=workspace,
        name="VIP early access",
        subject="Early access for our best customers",
        format="html",
        html='<h1>Thank you, {{ first_name | default: "friend" }}</h1><p>As one of our best customers you get '
        'early access to the summer sale.</p><p><a class="button" href="https://demo-outfitters.example/vip">'
        "Shop early</a></p>",
    )
    return spring


def _flows(workspace: Workspace) -> None:
    now = timezone.now()
    # Let the flows start from the last three days of demo events, so they have customers waiting at their steps.
    first_recent = (
        Event.objects.filter(workspace=workspace, occurred_at__gte=now - dt.timedelta(days=3))
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    for key in DEMO_FLOWS:
        flow = flows.flow_install_preset(workspace=workspace, key=key, activate=True)
        if first_recent:
            Flow.objects.filter(workspace=workspace, pk=flow.pk).update(event_cursor=first_recent - 1)
    flows.flows_ingest_events(workspace=workspace)
    flows.flows_enrol_by_date(workspace=workspace, now=now)
    flows.flows_advance(workspace=workspace, now=now)
    messages_send_due(
        workspace=workspace, now=now, connection=get_connection("django.core.mail.backends.locmem.EmailBackend")
    )


def _campaign(workspace: Workspace, template: EmailTemplate) -> None:
    from segments.models import Segment

    segment = (
        Segment.objects.filter(workspace=workspace, starter_key="repeat_buyers").first()
        or Segment.objects.filter(workspace=workspace).order_by("-size").first()
    )
    if segment is None:
        return
    started = timezone.now() - dt.timedelta(days=7)
    campaign = Campaign.objects.create(
        workspace=workspace,
        name="Spring collection launch",
        template=template,
        audience_segment_ids=[segment.pk],
        subject_b="New season, new favourites: 15% off inside",
        ab_sample_percent=20,
        ab_wait_hours=4,
    )
    try:
        services.campaign_launch(workspace=workspace, campaign=campaign, now=started, dispatch=False)
    except Exception:  # noqa: BLE001 - an empty demo audience just means no demo campaign
        Campaign.objects.filter(pk=campaign.pk).delete()
        return
    connection = get_connection("django.core.mail.backends.locmem.EmailBackend")
    rng = random.Random(7)
    messages_send_due(workspace=workspace, campaign_id=campaign.pk, now=started, connection=connection)
    _engage(workspace, campaign, started, rng, open_rate={"A": 0.32, "B": 0.41})
    services.campaign_ab_decide(
        workspace=workspace, campaign=campaign, now=started + dt.timedelta(hours=4), dispatch=False
    )
    rest_sent = started + dt.timedelta(hours=4, minutes=1)
    messages_send_due(workspace=workspace, campaign_id=campaign.pk, now=rest_sent, connection=connection)
    _engage(workspace, campaign, rest_sent, rng, open_rate={"B": 0.38}, only_after=rest_sent)
    conversions_attribute(workspace=workspace, now=timezone.now())


def _engage(workspace, campaign, sent_at, rng, *, open_rate: dict, only_after=None) -> None:
    messages = Message.objects.filter(workspace=workspace, campaign=campaign, status=Message.Status.SENT)
    if only_after:
        messages = messages.filter(sent_at__gte=only_after)
    for message in messages.order_by("id"):
        later = sent_at + dt.timedelta(minutes=rng.randint(10, 600))
        roll = rng.random()
        if roll < 0.01:
            tracking.esp_event_apply(event_type="bounced", token=message.token, now=later)
            continue
        if roll < 0.09:  # Apple Mail Privacy Protection fetches the pixel without anyone reading
            tracking.message_open(token=message.token, user_agent="Mozilla/5.0", ip="17.58.10.20", now=later)
        if rng.random() < open_rate.get(message.variant, 0.35):
            tracking.message_open(token=message.token, user_agent=HUMAN_AGENT, ip="203.0.113.7", now=later)
            if rng.random() < 0.28:
                tracking.message_click(
                    token=message.token,
                    url="https://demo-outfitters.example/spring",
                    now=later + dt.timedelta(minutes=2),
                )
            elif rng.random() < 0.02:
                tracking.message_unsubscribe(token=message.token, source="page", now=later)
