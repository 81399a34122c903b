import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from campaigns.flows import (
    PRESETS,
    flow_install_preset,
    flow_set_active,
    flow_step_counts,
    flows_advance,
    flows_enrol_by_date,
    flows_ingest_events,
)
from campaigns.models import FlowRun, Message
from campaigns.promo import promo_codes_register
from campaigns.sending import messages_send_due
from customers.services import event_record
from tests.factories import CartFactory, CustomerFactory

T0 = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def tick(workspace, now):
    """What the minute tick does for flows, with the clock at ``now``."""
    flows_ingest_events(workspace=workspace)
    flows_advance(workspace=workspace, now=now)
    return messages_send_due(workspace=workspace, now=now).sent


@pytest.fixture
def cart_flow(in_scope):
    flow = flow_install_preset(workspace=in_scope, key="abandoned_checkout")
    flow_set_active(workspace=in_scope, flow=flow, is_active=True)
    flow.refresh_from_db()
    return flow


def wait_step(flow, hours: int) -> int:
    return flow.steps.get(kind="wait", wait_hours=hours).pk


def start_checkout(workspace, customer):
    cart = CartFactory(
        workspace=workspace,
        customer=customer,
        checkout_url="https://shop.example/checkout/abc",
        lines=[{"title": "Trail shoes", "quantity": 1, "price": "89.00"}],
        value=Decimal("89.00"),
    )
    event_record(
        workspace=workspace, customer=customer, type="checkout_started", occurred_at=T0, properties={"cart_id": cart.pk}
    )
    return cart


def test_abandoned_checkout_sends_at_4h_and_24h_with_the_cart(in_scope, cart_flow):
    workspace = in_scope
    customer = CustomerFactory(workspace=workspace, email_consent="subscribed", first_name="Ann")
    start_checkout(workspace, customer)

    assert tick(workspace, at(1)) == 0
    assert flow_step_counts(workspace=workspace, flow=cart_flow) == {wait_step(cart_flow, 4): 1}
    assert tick(workspace, at(3.9)) == 0
    assert tick(workspace, at(4)) == 1
    assert flow_step_counts(workspace=workspace, flow=cart_flow) == {wait_step(cart_flow, 20): 1}
    assert tick(workspace, at(23.9)) == 0
    assert tick(workspace, at(24)) == 1
    assert tick(workspace, at(48)) == 0

    first, second = mail.outbox
    assert (first.subject, second.subject) == ("You left something behind", "Last call: your cart expires soon")
    assert "Trail shoes x 1  89.00 USD" in first.body
    assert "Return to your cart: https://shop.example/checkout/abc" in first.body
    assert FlowRun.objects.get().status == FlowRun.Status.COMPLETED


def test_an_order_ends_the_cart_flow_and_no_reminder_reaches_a_buyer(in_scope, cart_flow):
    workspace = in_scope
    customer = CustomerFactory(workspace=workspace, email_consent="subscribed")
    start_checkout(workspace, customer)
    assert tick(workspace, at(4)) == 1

    event_record(workspace=workspace, customer=customer, type="order_placed", occurred_at=at(5))

    assert tick(workspace, at(24)) == 0
    assert len(mail.outbox) == 1
    assert FlowRun.objects.get().status == FlowRun.Status.GOAL_REACHED


def test_a_buyer_before_the_first_reminder_gets_nothing(in_scope, cart_flow):
    workspace = in_scope
    customer = CustomerFactory(workspace=workspace, email_consent="subscribed")
    start_checkout(workspace, customer)
    tick(workspace, at(1))
    event_record(workspace=workspace, customer=customer, type="order_placed", occurred_at=at(2))

    assert tick(workspace, at(4)) + tick(workspace, at(24)) == 0
    assert mail.outbox == []


def test_repeated_checkout_events_do_not_stack_runs(in_scope, cart_flow):
    workspace = in_scope
    customer = CustomerFactory(workspace=workspace, email_consent="subscribed")
    start_checkout(workspace, customer)
    start_checkout(workspace, customer)
    tick(workspace, at(0))
    flows_ingest_events(workspace=workspace)  # a replayed tick reads nothing new

    assert FlowRun.objects.count() == 1
    assert tick(workspace, at(4)) == 1


def test_inactive_flow_ignores_events_and_turning_it_on_starts_from_now(in_scope):
    workspace = in_scope
    flow = flow_install_preset(workspace=workspace, key="abandoned_checkout")
    customer = CustomerFactory(workspace=workspace, email_consent="subscribed")
    start_checkout(workspace, customer)
    tick(workspace, at(5))
    flow_set_active(workspace=workspace, flow=flow, is_active=True)
    tick(workspace, at(6))
    assert FlowRun.objects.count() == 0


def test_welcome_series_now_plus_two_and_four_days(in_scope):
    workspace = in_scope
    flow = flow_install_preset(workspace=workspace, key="welcome", activate=True)
    customer = CustomerFactory(workspace=workspace, email_consent="subscribed")
    event_record(workspace=workspace, customer=customer, type="customer_created", occurred_at=T0)

    sent = [tick(workspace, at(h)) for h in (0, 47, 48, 95, 96, 200)]

    assert sent == [1, 0, 1, 0, 1, 0]
    assert [m.subject for m in mail.outbox] == [
        f"Welcome to {workspace.name}, {customer.first_name}!",
        "Our bestsellers, picked for you",
        f"The story behind {workspace.name}",
    ]
    assert Message.objects.filter(flow_step__flow=flow, status="sent").count() == 3


def test_birthday_month_enrols_once_a_year(in_scope):
    workspace = in_scope
    flow_install_preset(workspace=workspace, key="birthday", activate=True)
    march = CustomerFactory(workspace=workspace, email_consent="subscribed", birth_date=dt.date(1990, 3, 28))
    CustomerFactory(workspace=workspace, email_consent="subscribed", birth_date=dt.date(1990, 7, 1))

    assert flows_enrol_by_date(workspace=workspace, now=T0) == 1
    assert flows_enrol_by_date(workspace=workspace, now=T0 + dt.timedelta(days=1)) == 0
    flows_advance(workspace=workspace, now=T0)
    promo_codes_register(workspace=workspace, now=T0)  # what the send task does first: the unique BDAY- code
    messages_send_due(workspace=workspace, now=T0)

    assert [m.to for m in mail.outbox] == [[march.email]]
    assert "BDAY-" in mail.outbox[0].body


def test_every_preset_installs_with_templates_that_compile(in_scope):
    from campaigns.sending import compiled_template

    for key in PRESETS:
        flow = flow_install_preset(workspace=in_scope, key=key)
        for step in flow.steps.all():
            if step.template_id:
                compiled_template(workspace=in_scope, template=step.template)
    assert flow_install_preset(workspace=in_scope, key="welcome").preset == "welcome"  # idempotent


def test_a_run_far_behind_does_not_bunch_its_emails(in_scope, cart_flow):
    workspace = in_scope
    customer = CustomerFactory(workspace=workspace, email_consent="subscribed")
    start_checkout(workspace, customer)

    assert tick(workspace, at(72)) == 1  # three days late: the first reminder now...
    assert flow_step_counts(workspace=workspace, flow=cart_flow) == {wait_step(cart_flow, 20): 1}
    # ...and the last call ~20 hours after it (the wait counts from at most LATE_GRACE = 1 h in the past)
    assert tick(workspace, at(72 + 18.9)) == 0
    assert tick(workspace, at(72 + 19)) == 1
