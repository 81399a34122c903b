import datetime as dt

from django.utils import timezone
from django_scopes import scope

from campaigns import demo
from campaigns.models import Campaign, Flow, FlowRun, Message
from customers.services import event_record
from tests.campaigns.factories import make_segment, subscribed_customers


def test_seed_creates_templates_live_flows_and_a_sent_campaign_with_results(workspace):
    customers = subscribed_customers(workspace, 12)
    make_segment(workspace, customers, name="Everyone")
    with scope(workspace=workspace):
        for customer in customers[:3]:
            event_record(
                workspace=workspace,
                customer=customer,
                type="checkout_started",
                occurred_at=timezone.now() - dt.timedelta(hours=5),
            )

    demo.seed(workspace=workspace)
    demo.seed(workspace=workspace)  # idempotent

    with scope(workspace=workspace):
        campaign = Campaign.objects.get()
        assert (campaign.status, campaign.recipients_count, campaign.ab_winner in ("A", "B")) == ("sent", 12, True)
        assert Message.objects.filter(campaign=campaign, status="sent").count() == 12
        assert Message.objects.filter(campaign=campaign, opened_at__isnull=False).exists()
        assert Flow.objects.filter(is_active=True).count() == len(demo.DEMO_FLOWS)
        cart_flow = Flow.objects.get(preset="abandoned_checkout")
        # the three checkouts of 5 hours ago entered the cart flow and got their first reminder
        assert FlowRun.objects.filter(flow=cart_flow).count() == 3
        assert Message.objects.filter(flow_step__flow=cart_flow).count() == 3
