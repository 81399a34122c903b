import datetime as dt
from email import message_from_bytes

import pytest
from django.core import mail
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Message, PromoCode
from campaigns.promo import PromoResult, promo_codes_register
from campaigns.sending import messages_requeue_stale, messages_send_due, sending_policy
from crm.exceptions import DomainError
from customers.models import Customer, Event
from tests.campaigns.factories import (
    CampaignFactory,
    EmailTemplateFactory,
    MessageFactory,
    SuppressionFactory,
    make_segment,
    subscribed_customers,
)
from tests.factories import CustomerFactory

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def launch(workspace, customers, *, excluded=(), now=NOW, **campaign_fields):
    segment = make_segment(workspace, customers)
    exclusion_ids = [make_segment(workspace, excluded).pk] if excluded else []
    campaign = CampaignFactory(
        workspace=workspace, audience_segment_ids=[segment.pk], excluded_segment_ids=exclusion_ids, **campaign_fields
    )
    services.campaign_launch(workspace=workspace, campaign=campaign, now=now)
    return campaign


def recipients():
    return sorted(address for m in mail.outbox for address in m.to)


def test_audience_is_segments_minus_exclusions_with_consent_only(in_scope):
    workspace = in_scope
    wanted = subscribed_customers(workspace, 3)
    excluded = subscribed_customers(workspace, 1)
    no_consent = CustomerFactory(workspace=workspace, email_consent="not_subscribed")
    unsubscribed = CustomerFactory(workspace=workspace, email_consent="unsubscribed")
    suppressed = subscribed_customers(workspace, 1)[0]
    SuppressionFactory(workspace=workspace, email=suppressed.email)

    campaign = launch(workspace, [*wanted, *excluded, no_consent, unsubscribed, suppressed], excluded=excluded)

    queued = set(Message.objects.filter(campaign=campaign).values_list("customer_id", flat=True))
    assert queued == {c.pk for c in wanted}
    campaign.refresh_from_db()
    assert (campaign.status, campaign.recipients_count) == ("sending", 3)


def test_every_recipient_gets_exactly_one_message_with_rfc8058_headers(in_scope):
    workspace = in_scope
    customers = subscribed_customers(workspace, 5)
    campaign = launch(workspace, customers)

    result = messages_send_due(workspace=workspace, now=NOW, batch_size=2)
    again = messages_send_due(workspace=workspace, now=NOW)

    assert (result.sent, again.sent) == (5, 0)
    assert recipients() == sorted(c.email for c in customers)
    email = mail.outbox[0]
    message = Message.objects.get(campaign=campaign, customer__email=email.to[0])
    assert email.extra_headers["List-Unsubscribe"] == f"<http://127.0.0.1:8000/e/u/{message.token}/>"
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    raw = message_from_bytes(email.message().as_bytes())
    assert [part.get_content_type() for part in raw.walk()][1:] == ["text/plain", "text/html"]
    assert "Unsubscribe" in email.body and "/e/u/" in email.alternatives[0][0]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert Event.objects.filter(type="email_sent", customer__in=customers).count() == 5


def test_a_claimed_row_is_never_sent_by_a_second_worker(in_scope):
    workspace = in_scope
    customer = subscribed_customers(workspace, 1)[0]
    campaign = launch(workspace, [customer])
    # another worker claimed it a moment ago
    Message.objects.filter(campaign=campaign).update(status=Message.Status.SENDING, claimed_at=NOW, claim_token="other")

    assert messages_send_due(workspace=workspace, now=NOW).sent == 0
    assert mail.outbox == []


def test_stale_claims_of_a_dead_worker_are_requeued_after_the_lease(in_scope):
    workspace = in_scope
    customer = subscribed_customers(workspace, 1)[0]
    campaign = launch(workspace, [customer])
    Message.objects.filter(campaign=campaign).update(status=Message.Status.SENDING, claimed_at=NOW, claim_token="dead")

    assert messages_requeue_stale(workspace=workspace, now=NOW + dt.timedelta(minutes=5)) == 0
    assert messages_requeue_stale(workspace=workspace, now=NOW + dt.timedelta(minutes=11)) == 1
    assert messages_send_due(workspace=workspace, now=NOW + dt.timedelta(minutes=11)).sent == 1
    assert recipients() == [customer.email]


def test_consent_and_suppression_are_rechecked_at_send_time(in_scope):
    workspace = in_scope
    a, b, c = subscribed_customers(workspace, 3)
    launch(workspace, [a, b, c])
    Customer.objects.filter(pk=a.pk).update(email_consent="unsubscribed")
    SuppressionFactory(workspace=workspace, email=b.email.upper(), reason="bounced")
    SuppressionFactory._meta.model.objects.filter(email=b.email.upper()).update(email=b.email)

    result = messages_send_due(workspace=workspace, now=NOW)

    assert (result.sent, result.suppressed) == (1, 2)
    assert recipients() == [c.email]


def test_frequency_cap_defers_instead_of_dropping(in_scope):
    workspace = in_scope
    customer = subscribed_customers(workspace, 1)[0]
    earlier = CampaignFactory(workspace=workspace, status="sent")
    MessageFactory(campaign=earlier, customer=customer, status="sent", sent_at=NOW - dt.timedelta(hours=2))
    campaign = launch(workspace, [customer])

    result = messages_send_due(workspace=workspace, now=NOW)

    message = Message.objects.get(campaign=campaign)
    assert (result.sent, result.deferred) == (0, 1)
    assert (message.status, message.send_after, message.deferred_reason) == (
        "queued",
        NOW + dt.timedelta(hours=14),
        "frequency_cap",
    )
    assert messages_send_due(workspace=workspace, now=NOW + dt.timedelta(hours=13)).sent == 0
    assert messages_send_due(workspace=workspace, now=NOW + dt.timedelta(hours=14)).sent == 1
    assert recipients() == [customer.email]


def test_two_messages_for_one_customer_in_one_batch_respect_the_cap(in_scope):
    workspace = in_scope
    customer = subscribed_customers(workspace, 1)[0]
    launch(workspace, [customer])
    launch(workspace, [customer])

    result = messages_send_due(workspace=workspace, now=NOW)

    assert (result.sent, result.deferred) == (1, 1)


def test_quiet_hours_apply_in_the_workspace_timezone(in_scope):
    workspace = in_scope
    workspace.timezone = "America/New_York"
    workspace.save()
    services.policy_update(workspace=workspace, quiet_hours_start=dt.time(21, 0), quiet_hours_end=dt.time(8, 0))
    customer = subscribed_customers(workspace, 1)[0]
    late_evening = dt.datetime(2026, 3, 10, 22, 30, tzinfo=workspace.tzinfo)  # 02:30 UTC next day
    campaign = launch(workspace, [customer], now=late_evening)

    result = messages_send_due(workspace=workspace, now=late_evening)

    message = Message.objects.get(campaign=campaign)
    assert (result.sent, result.deferred) == (0, 1)
    assert message.send_after == dt.datetime(2026, 3, 11, 8, 0, tzinfo=workspace.tzinfo)
    assert message.deferred_reason == "quiet_hours"
    assert messages_send_due(workspace=workspace, now=message.send_after).sent == 1


def test_support_signals_hold_customers_out_of_promotional_sends(in_scope):
    workspace = in_scope
    ticket, unhappy, old_unhappy, happy = subscribed_customers(workspace, 4)
    Customer.objects.filter(pk=ticket.pk).update(open_tickets_count=1)
    Customer.objects.filter(pk=unhappy.pk).update(last_csat_score=1, last_csat_at=NOW - dt.timedelta(days=3))
    Customer.objects.filter(pk=old_unhappy.pk).update(last_csat_score=1, last_csat_at=NOW - dt.timedelta(days=90))
    launch(workspace, [ticket, unhappy, old_unhappy, happy])

    result = messages_send_due(workspace=workspace, now=NOW)

    assert (result.sent, result.held_out) == (2, 2)
    assert recipients() == sorted([old_unhappy.email, happy.email])


def test_non_promotional_sends_ignore_the_support_hold_out(in_scope):
    workspace = in_scope
    customer = subscribed_customers(workspace, 1)[0]
    Customer.objects.filter(pk=customer.pk).update(open_tickets_count=2)
    launch(workspace, [customer], is_promotional=False)
    assert messages_send_due(workspace=workspace, now=NOW).sent == 1


def test_pause_resume_and_cancel(in_scope):
    workspace = in_scope
    customers = subscribed_customers(workspace, 4)
    campaign = launch(workspace, customers)

    services.campaign_pause(workspace=workspace, campaign=campaign)
    assert messages_send_due(workspace=workspace, now=NOW).sent == 0
    services.campaign_resume(workspace=workspace, campaign=campaign)
    assert messages_send_due(workspace=workspace, now=NOW, batch_size=1, max_batches=2).sent == 2
    cancelled = services.campaign_cancel(workspace=workspace, campaign=campaign)

    assert cancelled == 2
    assert messages_send_due(workspace=workspace, now=NOW).sent == 0
    assert len(mail.outbox) == 2
    with pytest.raises(DomainError):
        services.campaign_resume(workspace=workspace, campaign=campaign)


def test_ab_test_sends_the_winner_to_the_rest_after_the_wait(in_scope):
    workspace = in_scope
    customers = subscribed_customers(workspace, 20)
    campaign = launch(workspace, customers, subject_b="Subject B wins", ab_sample_percent=20, ab_wait_hours=4)

    messages_send_due(workspace=workspace, now=NOW)
    sample = Message.objects.filter(campaign=campaign, status="sent")
    assert sorted(sample.values_list("variant", flat=True)) == ["A", "A", "B", "B"]
    assert Message.objects.filter(campaign=campaign, status="waiting").count() == 16
    Message.objects.filter(campaign=campaign, variant="B").update(opened_at=NOW)

    assert services.campaign_ab_decide(workspace=workspace, campaign=campaign, now=NOW + dt.timedelta(hours=3)) == ""
    assert services.campaign_ab_decide(workspace=workspace, campaign=campaign, now=NOW + dt.timedelta(hours=4)) == "B"
    messages_send_due(workspace=workspace, now=NOW + dt.timedelta(hours=20))

    subjects = [m.subject for m in mail.outbox]
    assert len(subjects) == 20 and len({tuple(m.to) for m in mail.outbox}) == 20
    assert subjects.count("Subject B wins") == 18
    campaign.refresh_from_db()
    assert (campaign.status, campaign.ab_winner) == ("sent", "B")


def test_scheduled_campaign_launches_when_due(in_scope):
    from campaigns.services import campaign_schedule, campaigns_launch_due

    workspace = in_scope
    customer = subscribed_customers(workspace, 1)[0]
    segment = make_segment(workspace, [customer])
    campaign = CampaignFactory(workspace=workspace, audience_segment_ids=[segment.pk])
    at = timezone.now() + dt.timedelta(hours=2)
    campaign_schedule(workspace=workspace, campaign=campaign, at=at)

    assert campaigns_launch_due(workspace=workspace, now=at - dt.timedelta(minutes=1)) == 0
    assert campaigns_launch_due(workspace=workspace, now=at) == 1
    campaign.refresh_from_db()
    assert campaign.status == "sending"


def test_launch_refuses_an_empty_audience_and_a_second_launch(in_scope):
    workspace = in_scope
    nobody = CustomerFactory(workspace=workspace, email_consent="not_subscribed")
    segment = make_segment(workspace, [nobody])
    campaign = CampaignFactory(workspace=workspace, audience_segment_ids=[segment.pk])
    with pytest.raises(DomainError, match="Nobody"):
        services.campaign_launch(workspace=workspace, campaign=campaign)
    ok = launch(workspace, subscribed_customers(workspace, 1))
    with pytest.raises(DomainError, match="already"):
        services.campaign_launch(workspace=workspace, campaign=ok)


def test_personalisation_unique_promo_codes_and_recommendations(in_scope):
    from tests.factories import OrderFactory, OrderLineFactory, ProductFactory

    workspace = in_scope
    tent, stove, lamp = (ProductFactory(workspace=workspace, title=t) for t in ("Tent", "Stove", "Lamp"))
    buyer = subscribed_customers(workspace, 1, first_name="Zoe")[0]
    OrderLineFactory(order=OrderFactory(workspace=workspace, customer=buyer), product=tent)
    for _ in range(2):  # others bought the tent with the stove
        order = OrderFactory(workspace=workspace)
        OrderLineFactory(order=order, product=tent)
        OrderLineFactory(order=order, product=stove)
    template = EmailTemplateFactory(
        workspace=workspace,
        unique_promo_prefix="VIP",
        subject="{{ first_name }}, your code {{ promo_code }}",
        blocks=[{"type": "text", "text": "Hi"}, {"type": "products", "source": "recommendations"}],
    )
    campaign = launch(workspace, [buyer], template=template)

    assert messages_send_due(workspace=workspace, now=NOW).deferred == 1  # no code yet: the email waits for it
    message = Message.objects.get(campaign=campaign)
    assert (message.status, message.deferred_reason) == ("queued", "promo_code")
    assert promo_codes_register(workspace=workspace, now=NOW) == PromoResult(local=1)  # no store: kept in the CRM
    messages_send_due(workspace=workspace, now=NOW + dt.timedelta(minutes=1))

    email = mail.outbox[0]
    assert PromoCode.objects.get(message=message).code in email.subject
    assert email.subject.startswith("Zoe, your code VIP-") and len(email.subject.split("VIP-")[1]) == 8
    assert "- Stove" in email.body.split("You might also like:")[1].splitlines()[1]
    assert "Tent" not in email.body.split("You might also like:")[1]
    assert lamp.title in email.body  # padded with bestsellers
    assert sending_policy(workspace=workspace).frequency_cap_hours == 16
