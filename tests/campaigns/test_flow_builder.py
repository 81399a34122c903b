"""Custom flows: two-way splits in the engine, the builder's services and its htmx views."""

import datetime as dt

import pytest
from django.urls import reverse
from django_scopes import scope

from campaigns import flow_builder
from campaigns.flows import flow_set_active, flows_advance, flows_ingest_events
from campaigns.models import Flow, FlowRun, FlowStep, Message
from campaigns.selectors import flow_builder_rows
from campaigns.sending import messages_send_due
from crm.exceptions import DomainError
from customers.models import CustomerTag
from customers.services import event_record
from tests.campaigns.factories import EmailTemplateFactory, FlowFactory, make_segment
from tests.conftest import member_client
from tests.factories import CustomerFactory

T0 = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)


def url(name, **kwargs):
    return reverse(f"campaigns:{name}", kwargs={"workspace_slug": "acme", **kwargs})


def build_split_flow(workspace):
    """Customer created -> split on "has ordered": yes: send "Thanks", wait 24 h; no: tag "lead"; then send "News"."""
    flow = flow_builder.flow_create(
        workspace=workspace, name="Split test", trigger="event", trigger_event="customer_created"
    )
    thanks = EmailTemplateFactory(workspace=workspace, name="Thanks")
    news = EmailTemplateFactory(workspace=workspace, name="News")
    split = flow_builder.flow_step_add(
        workspace=workspace,
        flow=flow,
        kind="condition",
        condition=flow_builder.condition_from_input(workspace=workspace, field="orders_count", op="gte", value="1"),
    )
    add = flow_builder.flow_step_add
    add(workspace=workspace, flow=flow, kind="send_email", parent_id=split.pk, branch="yes", template_id=thanks.pk)
    wait = add(workspace=workspace, flow=flow, kind="wait", parent_id=split.pk, branch="yes", wait_hours=24)
    add(workspace=workspace, flow=flow, kind="add_tag", parent_id=split.pk, branch="no", tag="lead")
    add(workspace=workspace, flow=flow, kind="send_email", template_id=news.pk)
    flow_set_active(workspace=workspace, flow=flow, is_active=True)
    return flow, wait


def emails_of(customer) -> list[str]:
    return list(
        Message.objects.filter(customer=customer).order_by("id").values_list("flow_step__template__name", flat=True)
    )


def test_a_split_sends_each_customer_down_their_branch_then_both_continue(in_scope):
    workspace = in_scope
    flow, wait = build_split_flow(workspace)
    buyer = CustomerFactory(workspace=workspace, orders_count=2)
    lead = CustomerFactory(workspace=workspace, orders_count=0)
    for customer in (buyer, lead):
        event_record(workspace=workspace, customer=customer, type="customer_created", occurred_at=T0)

    flows_ingest_events(workspace=workspace)
    flows_advance(workspace=workspace, now=T0)

    assert emails_of(buyer) == ["Thanks"]
    assert emails_of(lead) == ["News"]
    assert set(CustomerTag.objects.filter(name="lead").values_list("customer_id", flat=True)) == {lead.pk}
    assert FlowRun.objects.get(customer=lead).status == "completed"
    run = FlowRun.objects.get(customer=buyer)
    assert (run.status, run.waiting_step_id) == ("active", wait.pk)
    builder = flow_builder_rows(workspace=workspace, flow=flow)
    assert [(r.step.kind, r.waiting) for r in builder["rows"] if r.kind == "step" and r.step.kind == "wait"] == [
        ("wait", 1)
    ]

    flows_advance(workspace=workspace, now=T0 + dt.timedelta(hours=25))

    assert emails_of(buyer) == ["Thanks", "News"]
    assert FlowRun.objects.get(customer=buyer).status == "completed"
    assert flow_builder_rows(workspace=workspace, flow=flow)["waiting"] == 0


def test_a_split_on_a_segment(in_scope):
    workspace = in_scope
    vip, other = CustomerFactory(workspace=workspace), CustomerFactory(workspace=workspace)
    segment = make_segment(workspace, [vip])
    flow = flow_builder.flow_create(workspace=workspace, name="VIP", trigger="event", trigger_event="customer_created")
    split = flow_builder.flow_step_add(
        workspace=workspace,
        flow=flow,
        kind="condition",
        condition=flow_builder.condition_from_input(workspace=workspace, segment_id=str(segment.pk)),
    )
    flow_builder.flow_step_add(
        workspace=workspace, flow=flow, kind="add_tag", parent_id=split.pk, branch="yes", tag="v"
    )
    flow_builder.flow_step_add(workspace=workspace, flow=flow, kind="add_tag", parent_id=split.pk, branch="no", tag="n")
    flow_set_active(workspace=workspace, flow=flow, is_active=True)
    for customer in (vip, other):
        event_record(workspace=workspace, customer=customer, type="customer_created", occurred_at=T0)

    flows_ingest_events(workspace=workspace)
    flows_advance(workspace=workspace, now=T0)

    assert dict(CustomerTag.objects.values_list("customer_id", "name")) == {vip.pk: "v", other.pk: "n"}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": " "}, "name", "Give the flow a name."),
        ({"trigger_event": ""}, "trigger_event", "Choose the event that starts the flow."),
        ({"goal_event": "order_placed", "trigger_event": "order_placed"}, "goal_event", "The goal cannot be"),
        ({"trigger": "days_after_order", "trigger_days": 0}, "trigger_days", "between 1 and 730"),
        ({"goal_event": "unknown"}, "goal_event", "Choose a goal from the list"),
    ],
)
def test_flow_settings_are_validated_with_clear_messages(in_scope, changes, field, message):
    values = {"name": "Mine", "trigger": "event", "trigger_event": "customer_created"} | changes
    with pytest.raises(DomainError) as raised:
        flow_builder.flow_create(workspace=in_scope, **values)
    assert raised.value.field == field
    assert message in raised.value.message
    assert not Flow.objects.exists()


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "A split needs a rule"),
        ({"field": "orders_count", "op": "gte", "value": "many"}, "Number of orders is compared with a number."),
        ({"field": "rfm_group", "op": "gt", "value": "champions"}, "can only be compared with “is” or “is not”"),
        ({"segment_id": "999999"}, "Choose one of your segments."),
        ({"field": "password", "op": "eq", "value": "x"}, "Choose a field from the list."),
    ],
)
def test_split_rules_are_validated(in_scope, inputs, message):
    with pytest.raises(DomainError) as raised:
        flow_builder.condition_from_input(workspace=in_scope, **inputs)
    assert message in raised.value.message


def test_removing_a_split_removes_its_branches_and_moves_waiting_runs_on(in_scope):
    workspace = in_scope
    flow, wait = build_split_flow(workspace)
    buyer = CustomerFactory(workspace=workspace, orders_count=1)
    event_record(workspace=workspace, customer=buyer, type="customer_created", occurred_at=T0)
    flows_ingest_events(workspace=workspace)
    flows_advance(workspace=workspace, now=T0)
    split = FlowStep.objects.get(flow=flow, kind="condition")

    removed = flow_builder.flow_step_remove(workspace=workspace, step=split)

    assert removed == 4  # the split, its two yes steps and its no step
    assert list(FlowStep.objects.filter(flow=flow).values_list("kind", "position")) == [("send_email", 0)]
    run = FlowRun.objects.get(customer=buyer)
    assert run.waiting_step_id is None and run.resume_step.template.name == "News"
    flows_advance(workspace=workspace, now=T0 + dt.timedelta(hours=25))
    assert "News" in emails_of(buyer)
    assert FlowRun.objects.get(customer=buyer).status == "completed"


def test_moving_steps_reorders_only_within_their_list(in_scope):
    workspace = in_scope
    flow = FlowFactory(workspace=workspace, trigger_event="customer_created")
    first = flow_builder.flow_step_add(workspace=workspace, flow=flow, kind="wait", wait_hours=1)
    second = flow_builder.flow_step_add(workspace=workspace, flow=flow, kind="add_tag", tag="a")

    flow_builder.flow_step_move(workspace=workspace, step=second, up=True)
    flow_builder.flow_step_move(workspace=workspace, step=second, up=True)  # already first: nothing happens

    assert list(FlowStep.objects.filter(flow=flow).order_by("position").values_list("id", flat=True)) == [
        second.pk,
        first.pk,
    ]


def test_a_flow_with_problems_cannot_be_turned_on(in_scope):
    workspace = in_scope
    flow = flow_builder.flow_create(workspace=workspace, name="Empty", trigger="event", trigger_event="order_placed")
    flow_builder.flow_step_add(workspace=workspace, flow=flow, kind="wait", wait_hours=2)

    with pytest.raises(DomainError) as raised:
        flow_set_active(workspace=workspace, flow=flow, is_active=True)

    assert "The flow only waits: add an email or a tag step." in raised.value.message
    flow.refresh_from_db()
    assert not flow.is_active


# --- views ---------------------------------------------------------------------------------------------------


def test_create_a_flow_in_the_builder_and_add_steps_with_htmx(owner_client, workspace):
    template = EmailTemplateFactory(workspace=workspace, name="Hello")
    refused = owner_client.post(
        url("flow_create"),
        {"name": "Mine", "trigger": "event", "trigger_event": "order_placed", "goal_event": "order_placed"},
    )
    assert refused.status_code == 200
    assert "The goal cannot be the event that starts the flow" in refused.content.decode()

    created = owner_client.post(
        url("flow_create"), {"name": "Mine", "trigger": "event", "trigger_event": "order_placed", "is_promotional": ""}
    )
    with scope(workspace=workspace):
        flow = Flow.objects.get(name="Mine")
    assert created.status_code == 302 and created["Location"] == url("flow_detail", flow_id=flow.pk)
    assert (flow.is_active, flow.is_promotional) == (False, False)

    added = owner_client.post(
        url("flow_step_add", flow_id=flow.pk),
        {"kind": "condition", "field": "orders_count", "op": "gt", "value": "3"},
        HTTP_HX_REQUEST="true",
    )
    page = added.content.decode()
    assert added.status_code == 200 and "<html" not in page and 'id="flow-steps"' in page
    assert "Split: Number of orders &gt; 3?" in page
    with scope(workspace=workspace):
        split = FlowStep.objects.get(flow=flow, kind="condition")
    owner_client.post(
        url("flow_step_add", flow_id=flow.pk),
        {"kind": "send_email", "template": str(template.pk), "parent": str(split.pk), "branch": "yes"},
        HTTP_HX_REQUEST="true",
    )
    error = owner_client.post(
        url("flow_step_add", flow_id=flow.pk), {"kind": "wait", "wait_hours": "0"}, HTTP_HX_REQUEST="true"
    )
    assert "A wait lasts between 1 hour and a year" in error.content.decode()

    with scope(workspace=workspace):
        steps = list(FlowStep.objects.filter(flow=flow).values_list("kind", "parent_id", "branch"))
    assert steps == [("condition", None, ""), ("send_email", split.pk, "yes")]
    owner_client.post(url("flow_toggle", flow_id=flow.pk))
    with scope(workspace=workspace):
        flow.refresh_from_db()
    assert flow.is_active


def test_viewer_cannot_change_a_flow(workspace):
    flow = FlowFactory(workspace=workspace)

    response = member_client(workspace, "viewer").post(
        url("flow_step_add", flow_id=flow.pk), {"kind": "wait", "wait_hours": "2"}
    )

    assert response.status_code == 403
    with scope(workspace=workspace):
        assert not FlowStep.objects.filter(flow=flow).exists()


def test_cannot_access_other_workspace_flow_steps(owner_client, workspace, other_workspace):
    flow = FlowFactory(workspace=other_workspace)
    with scope(workspace=other_workspace):
        step = flow_builder.flow_step_add(workspace=other_workspace, flow=flow, kind="wait", wait_hours=3)

    for name in ("flow_step_move", "flow_step_remove"):
        assert owner_client.post(url(name, flow_id=flow.pk, step_id=step.pk)).status_code == 404
    assert owner_client.post(url("flow_step_add", flow_id=flow.pk), {"kind": "wait"}).status_code == 404

    with scope(workspace=other_workspace):
        assert list(FlowStep.objects.filter(flow=flow).values_list("id", flat=True)) == [step.pk]


def test_a_step_whose_emails_went_out_cannot_be_removed(owner_client, workspace):
    with scope(workspace=workspace):
        flow, _ = build_split_flow(workspace)
        buyer = CustomerFactory(workspace=workspace, orders_count=1, email_consent="subscribed")
        event_record(workspace=workspace, customer=buyer, type="customer_created", occurred_at=T0)
        flows_ingest_events(workspace=workspace)
        flows_advance(workspace=workspace, now=T0)
        assert messages_send_due(workspace=workspace, now=T0).sent == 1
        split = FlowStep.objects.get(flow=flow, kind="condition")

    response = owner_client.post(url("flow_step_remove", flow_id=flow.pk, step_id=split.pk), HTTP_HX_REQUEST="true")

    assert "This step has already sent 1 email(s)" in response.content.decode()
    with scope(workspace=workspace):
        assert FlowStep.objects.filter(flow=flow).count() == 5
        assert Message.objects.filter(flow_step__flow=flow, status="sent").count() == 1
