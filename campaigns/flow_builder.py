"""Building custom flows: create a flow, add, change, move and remove steps (splits included), check it can run."""

from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import F, Max

from campaigns.flow_tree import FlowTree
from campaigns.flows import BACK_IN_STOCK, BACK_IN_STOCK_DAYS, CONDITION_FIELDS, CONDITION_OPS
from campaigns.models import EmailTemplate, Flow, FlowRun, FlowStep, Message
from crm.exceptions import DomainError
from crm.models import Workspace
from customers.models import Event

# Events a flow can start on or end at, in the words the builder shows.
TRIGGER_EVENTS: dict[str, str] = {
    "customer_created": "Someone becomes a customer",
    "order_placed": "An order is placed",
    "checkout_started": "A checkout is started",
    "cart_abandoned": "A cart is abandoned",
    "product_viewed": "A product is viewed",
    "added_to_cart": "A product is added to the cart",
    "segment_entered": "A customer enters a segment",
    "rfm_group_changed": "A customer's RFM group changes",
    "product_back_in_stock": "A product someone wanted is back in stock",
}
GOAL_EVENTS: dict[str, str] = {
    "order_placed": "They place an order",
    "checkout_started": "They start a checkout",
    "email_clicked": "They click an email",
}
NUMBER_FIELDS = frozenset({"orders_count", "total_spent", "loyalty_points", "churn_risk", "open_tickets_count"})
FIELD_LABELS = {
    "orders_count": "Number of orders",
    "total_spent": "Total spent",
    "loyalty_points": "Loyalty points",
    "churn_risk": "Churn risk (0-1)",
    "open_tickets_count": "Open tickets",
    "rfm_group": "RFM group",
    "country": "Country code",
}
OP_LABELS = {"eq": "is", "neq": "is not", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}
MAX_STEPS = 50


def _validated_settings(
    *,
    workspace: Workspace,
    flow: Flow | None,
    name: str,
    trigger: str,
    trigger_event: str = "",
    trigger_days: int = 0,
    goal_event: str = "",
) -> dict:
    name = name.strip()
    if not name:
        raise DomainError("Give the flow a name.", field="name")
    same_name = Flow.objects.filter(workspace=workspace, name=name)
    if flow is not None:
        same_name = same_name.exclude(pk=flow.pk)
    if same_name.exists():
        raise DomainError(f"There is already a flow called “{name}”.", field="name")
    if trigger not in Flow.Trigger.values:
        raise DomainError("Choose what starts the flow.", field="trigger")
    if trigger == Flow.Trigger.EVENT:
        if trigger_event not in TRIGGER_EVENTS:
            raise DomainError("Choose the event that starts the flow.", field="trigger_event")
    else:
        trigger_event = ""
    if trigger == Flow.Trigger.DAYS_AFTER_ORDER:
        if not 1 <= trigger_days <= 730:
            raise DomainError("Give a number of days between 1 and 730.", field="trigger_days")
    elif trigger_event == BACK_IN_STOCK:  # who showed interest in the product in the last N days
        trigger_days = trigger_days or BACK_IN_STOCK_DAYS
        if not 1 <= trigger_days <= 365:
            raise DomainError("Give a number of days between 1 and 365.", field="trigger_days")
    else:
        trigger_days = 0
    if goal_event and goal_event not in GOAL_EVENTS:
        raise DomainError("Choose a goal from the list, or none.", field="goal_event")
    if goal_event and goal_event == trigger_event:
        raise DomainError(
            "The goal cannot be the event that starts the flow: every customer would leave at once.",
            field="goal_event",
        )
    return {
        "name": name[:120],
        "trigger": trigger,
        "trigger_event": trigger_event,
        "trigger_days": trigger_days,
        "goal_event": goal_event,
    }


def flow_create(*, workspace: Workspace, is_promotional: bool = True, **settings) -> Flow:
    """A custom flow, switched off and without steps: the builder adds them. ``settings``: name, trigger,
    trigger_event, trigger_days, goal_event (checked by ``_validated_settings``)."""
    fields = _validated_settings(workspace=workspace, flow=None, **settings)
    return Flow.objects.create(
        workspace=workspace,
        is_promotional=is_promotional,
        is_active=False,
        event_cursor=Event.objects.filter(workspace=workspace).order_by("-id").values_list("id", flat=True).first()
        or 0,
        **fields,
    )


def flow_settings_update(*, workspace: Workspace, flow: Flow, is_promotional: bool = True, **settings) -> Flow:
    fields = _validated_settings(workspace=workspace, flow=flow, **settings) | {"is_promotional": is_promotional}
    Flow.objects.filter(workspace=workspace, pk=flow.pk).update(**fields)
    for key, value in fields.items():
        setattr(flow, key, value)
    return flow


def condition_from_input(
    *, workspace: Workspace, segment_id: str = "", field: str = "", op: str = "", value: str = ""
) -> dict:
    """The split's rule from the builder's inputs: a segment, or one customer field compared with a value."""
    from segments.models import Segment

    if segment_id:
        if not segment_id.isdigit() or not Segment.objects.filter(workspace=workspace, pk=int(segment_id)).exists():
            raise DomainError("Choose one of your segments.", field="segment")
        return {"segment_id": int(segment_id)}
    if not field:
        raise DomainError(
            "A split needs a rule: choose a segment, or a field, a comparison and a value.", field="field"
        )
    if field not in CONDITION_FIELDS:
        raise DomainError("Choose a field from the list.", field="field")
    if op not in CONDITION_OPS:
        raise DomainError("Choose how to compare.", field="op")
    value = value.strip()
    if field in NUMBER_FIELDS:
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise DomainError(f"{FIELD_LABELS[field]} is compared with a number.", field="value") from None
        return {"field": field, "op": op, "value": float(number) if number % 1 else int(number)}
    if op not in ("eq", "neq"):
        raise DomainError(f"{FIELD_LABELS[field]} can only be compared with “is” or “is not”.", field="op")
    if not value:
        raise DomainError("Give the value to compare with.", field="value")
    return {"field": field, "op": op, "value": value.lower() if field == "rfm_group" else value.upper()}


def condition_label(condition: dict, segment_names: dict[int, str]) -> str:
    if condition.get("segment_id"):
        name = segment_names.get(condition["segment_id"], "a deleted segment")
        return f"In segment “{name}”"
    field = condition.get("field")
    if field in FIELD_LABELS:
        return f"{FIELD_LABELS[field]} {OP_LABELS.get(condition.get('op', 'eq'), '?')} {condition.get('value')}"
    return "No rule"


@transaction.atomic
def flow_step_add(
    *,
    workspace: Workspace,
    flow: Flow,
    kind: str,
    parent_id: int | None = None,
    branch: str = "",
    wait_hours: int | None = None,
    template_id: int | None = None,
    tag: str = "",
    condition: dict | None = None,
) -> FlowStep:
    """Append a step to the flow's own list or to a split's yes / no list."""
    Flow.objects.select_for_update().filter(workspace=workspace, pk=flow.pk).first()  # one edit at a time
    if kind not in FlowStep.Kind.values:
        raise DomainError("Choose what the step does.", field="kind")
    parent = None
    if parent_id is not None:
        parent = FlowStep.objects.filter(
            workspace=workspace, flow=flow, pk=parent_id, kind=FlowStep.Kind.CONDITION
        ).first()
        if parent is None or branch not in FlowStep.Branch.values:
            raise DomainError("That branch no longer exists: reload the page.")
    else:
        branch = ""
    if FlowStep.objects.filter(workspace=workspace, flow=flow).count() >= MAX_STEPS:
        raise DomainError(f"A flow has at most {MAX_STEPS} steps.")
    fields: dict = {}
    if kind == FlowStep.Kind.WAIT:
        if wait_hours is None or not 0 < wait_hours <= 24 * 365:
            raise DomainError("A wait lasts between 1 hour and a year (8760 hours).", field="wait_hours")
        fields["wait_hours"] = wait_hours
    elif kind == FlowStep.Kind.SEND_EMAIL:
        if template_id is None or not EmailTemplate.objects.filter(workspace=workspace, pk=template_id).exists():
            raise DomainError("Choose the email this step sends.", field="template")
        fields["template_id"] = template_id
    elif kind in (FlowStep.Kind.ADD_TAG, FlowStep.Kind.REMOVE_TAG):
        if not tag.strip():
            raise DomainError("A tag step needs the tag's name.", field="tag")
        fields["tag"] = tag.strip()[:64]
    elif kind == FlowStep.Kind.CONDITION:
        if not condition:
            raise DomainError("A split needs a rule.", field="field")
        fields["condition"] = condition
    siblings = FlowStep.objects.filter(workspace=workspace, flow=flow, parent=parent, branch=branch)
    last = siblings.aggregate(last=Max("position"))["last"]
    position = 0 if last is None else last + 1
    return FlowStep.objects.create(
        workspace=workspace, flow=flow, parent=parent, branch=branch, position=position, kind=kind, **fields
    )


@transaction.atomic
def flow_step_move(*, workspace: Workspace, step: FlowStep, up: bool) -> None:
    """Swap a step with its neighbour in its own list (steps never jump between lists)."""
    Flow.objects.select_for_update().filter(workspace=workspace, pk=step.flow_id).first()
    siblings = FlowTree.load(workspace=workspace, flow=step.flow).siblings(step)
    index = [s.pk for s in siblings].index(step.pk)
    other = index - 1 if up else index + 1
    if not 0 <= other < len(siblings):
        return
    order = [s.pk for s in siblings]
    order[index], order[other] = order[other], order[index]
    for position, pk in enumerate(order):
        FlowStep.objects.filter(workspace=workspace, pk=pk).update(position=position)


@transaction.atomic
def flow_step_remove(*, workspace: Workspace, step: FlowStep) -> int:
    """Delete a step (a split with both its lists). Runs about to run a deleted step go on with what follows it;
    runs waiting in a deleted wait go on when their wait ends; emails not sent yet are dropped. A step whose
    emails went out stays (its messages carry the reports and attributions). Returns how many steps were deleted."""
    Flow.objects.select_for_update().filter(workspace=workspace, pk=step.flow_id).first()
    tree = FlowTree.load(workspace=workspace, flow=step.flow)
    step = tree.steps[step.pk]
    doomed = tree.subtree_ids(step)
    sent = (
        Message.objects.filter(workspace=workspace, flow_step_id__in=doomed)
        .exclude(status__in=[Message.Status.QUEUED, Message.Status.CANCELLED])
        .count()
    )
    if sent:
        raise DomainError(
            f"This step has already sent {sent} email(s): removing it would delete their results and the orders "
            "attributed to them. Change the step (or turn the flow off) instead."
        )
    FlowRun.objects.filter(workspace=workspace, flow_id=step.flow_id, resume_step_id__in=doomed).update(
        resume_step=tree.after(step)
    )
    FlowRun.objects.filter(workspace=workspace, flow_id=step.flow_id, waiting_step_id__in=doomed).update(
        waiting_step=None
    )
    FlowStep.objects.filter(workspace=workspace, pk__in=doomed).delete()
    FlowStep.objects.filter(
        workspace=workspace,
        flow_id=step.flow_id,
        parent_id=step.parent_id,
        branch=step.branch,
        position__gt=step.position,
    ).update(position=F("position") - 1)
    return len(doomed)


def flow_problems(*, workspace: Workspace, flow: Flow) -> list[str]:
    """What stops the flow from running as meant, in words; empty when it can be turned on."""
    tree = FlowTree.load(workspace=workspace, flow=flow)
    problems = []
    if not tree.steps:
        problems.append("Add at least one step.")
    elif not any(s.kind != FlowStep.Kind.WAIT for s in tree.steps.values()):
        problems.append("The flow only waits: add an email or a tag step.")
    for step, _ in tree.walk():
        if step.kind == FlowStep.Kind.SEND_EMAIL and not step.template_id:
            problems.append("An email step has no email chosen.")
        if step.kind == FlowStep.Kind.CONDITION:
            if not step.condition:
                problems.append("A split has no rule.")
            if not tree.items(step.pk, "yes") and not tree.items(step.pk, "no"):
                problems.append("A split has no steps in either branch.")
    if flow.trigger == Flow.Trigger.EVENT and not flow.trigger_event:
        problems.append("Choose the event that starts the flow.")
    return problems
