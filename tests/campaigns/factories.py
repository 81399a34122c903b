import itertools

import factory
from django.utils import timezone
from django_scopes import scope

from campaigns.models import Campaign, EmailTemplate, Flow, FlowStep, Message, Suppression
from tests.factories import CustomerFactory, ScopedFactory, WorkspaceFactory


class EmailTemplateFactory(ScopedFactory):
    class Meta:
        model = EmailTemplate

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Template {n}")
    subject = 'Hello {{ first_name | default: "there" }}'
    blocks = factory.LazyFunction(
        lambda: [
            {"type": "text", "text": 'Hi {{ first_name | default: "there" }},\n\nNew arrivals are in.'},
            {"type": "button", "label": "Shop now", "url": "https://shop.example/new"},
        ]
    )


class CampaignFactory(ScopedFactory):
    class Meta:
        model = Campaign

    workspace = factory.SubFactory(WorkspaceFactory)
    template = factory.SubFactory(EmailTemplateFactory, workspace=factory.SelfAttribute("..workspace"))
    name = factory.Sequence(lambda n: f"Campaign {n}")
    audience_segment_ids = factory.LazyFunction(list)


class FlowFactory(ScopedFactory):
    class Meta:
        model = Flow

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Flow {n}")
    trigger_event = "checkout_started"


class FlowStepFactory(ScopedFactory):
    class Meta:
        model = FlowStep

    flow = factory.SubFactory(FlowFactory)
    workspace = factory.SelfAttribute("flow.workspace")
    position = factory.Sequence(lambda n: n)
    kind = FlowStep.Kind.WAIT
    wait_hours = 1


class MessageFactory(ScopedFactory):
    class Meta:
        model = Message

    campaign = factory.SubFactory(CampaignFactory)
    workspace = factory.SelfAttribute("campaign.workspace")
    customer = factory.SubFactory(CustomerFactory, workspace=factory.SelfAttribute("..workspace"))
    send_after = factory.LazyFunction(timezone.now)


class SuppressionFactory(ScopedFactory):
    class Meta:
        model = Suppression

    workspace = factory.SubFactory(WorkspaceFactory)
    email = factory.Sequence(lambda n: f"suppressed{n}@example.org")
    reason = Suppression.Reason.UNSUBSCRIBED


_segment_numbers = itertools.count(1)


def make_segment(workspace, customers, name: str | None = None):
    """A static segment holding ``customers``, made through the segments app's own service."""
    from segments.services import segment_create_static

    with scope(workspace=workspace):
        return segment_create_static(
            workspace=workspace,
            name=name or f"Segment {next(_segment_numbers)}",
            customer_ids=[c.pk for c in customers],
        )


def subscribed_customers(workspace, count: int, **kwargs):
    return [CustomerFactory(workspace=workspace, email_consent="subscribed", **kwargs) for _ in range(count)]
