"""Automated flows: triggers read customers.Event rows by cursor (Event.id), runs move through steps on the clock.

- ``flows_ingest_events`` enrols customers from new trigger events (no Django signals: the cursor makes replays
  and late workers harmless) and ends runs whose customer reached the flow's goal (an order ends the cart flow).
- ``flows_enrol_by_date`` enrols once a local day for date triggers (birthday month, N days after the last order,
  win-back after the customer's usual interval).
- ``flows_advance`` executes due runs: waits (relative to when the step became due, so a late tick does not
  stretch a flow), two-way splits (a "yes" and a "no" list of steps, see ``campaigns.flow_tree``), emails
  (Message rows, sent by the ordinary protocol) and tags.
"""

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Exists, Max, OuterRef, Q
from django.utils import timezone

from campaigns.flow_tree import FlowTree
from campaigns.models import EmailTemplate, Flow, FlowRun, FlowStep, Message
from crm.exceptions import DomainError
from crm.models import Workspace
from customers.models import Customer, Event, OrderLine

CONDITION_FIELDS = {
    "orders_count",
    "total_spent",
    "rfm_group",
    "loyalty_points",
    "country",
    "churn_risk",
    "open_tickets_count",
}
LATE_GRACE = dt.timedelta(hours=1)
BACK_IN_STOCK = "product_back_in_stock"
BACK_IN_STOCK_DAYS = 30
INTEREST_EVENTS = ("product_viewed", "added_to_cart")
CONDITION_OPS = {"eq": "exact", "neq": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}


def _send(template: str) -> dict:
    return {"kind": FlowStep.Kind.SEND_EMAIL, "template": template}


def _wait(hours: int) -> dict:
    return {"kind": FlowStep.Kind.WAIT, "wait_hours": hours}


# Ready-made templates the presets use: (subject, blocks).
PRESET_TEMPLATES: dict[str, tuple[str, list[dict]]] = {
    "Welcome 1": (
        'Welcome to {{ shop_name }}, {{ first_name | default: "friend" }}!',
        [
            {
                "type": "text",
                "text": '# Welcome, {{ first_name | default: "friend" }}!\n\nThanks for joining '
                '{{ shop_name }}. Here is {{ promo_code | default: "a little something" }} '
                "for your first order.",
            },
            {"type": "button", "label": "Start shopping", "url": "https://example.com/"},
        ],
    ),
    "Welcome 2": (
        "Our bestsellers, picked for you",
        [
            {"type": "text", "text": 'Hi {{ first_name | default: "there" }}, these are what people love most.'},
            {"type": "products", "source": "recommendations"},
        ],
    ),
    "Welcome 3": (
        "The story behind {{ shop_name }}",
        [
            {
                "type": "text",
                "text": 'Hi {{ first_name | default: "there" }},\n\nWe started {{ shop_name }} to make '
                "things we would want to use ourselves.",
            },
        ],
    ),
    "Cart reminder": (
        "You left something behind",
        [
            {"type": "text", "text": 'Hi {{ first_name | default: "there" }}, your cart is waiting:'},
            {"type": "products", "source": "cart"},
        ],
    ),
    "Cart last call": (
        "Last call: your cart expires soon",
        [
            {"type": "text", "text": "Still thinking it over? Your items are still here."},
            {"type": "products", "source": "cart"},
        ],
    ),
    "Browse follow-up": (
        'Still looking, {{ first_name | default: "friend" }}?',
        [
            {"type": "text", "text": "We noticed you were browsing. You might like these:"},
            {"type": "products", "source": "recommendations"},
        ],
    ),
    "Thank you + review": (
        "Thank you for your order!",
        [
            {
                "type": "text",
                "text": 'Hi {{ first_name | default: "there" }},\n\nThank you for shopping with '
                "{{ shop_name }}. How did we do? A short review helps other customers.",
            },
            {"type": "button", "label": "Write a review", "url": "https://example.com/reviews"},
        ],
    ),
    "We miss you": (
        'We miss you, {{ first_name | default: "friend" }}',
        [
            {
                "type": "text",
                "text": 'It has been a while. Here is {{ promo_code | default: "10% off" }} to come back.',
            },
            {"type": "products", "source": "recommendations"},
        ],
    ),
    "Happy birthday": (
        'Happy birthday, {{ first_name | default: "friend" }}!',
        [
            {
                "type": "text",
                "text": "# Happy birthday!\n\nA gift from {{ shop_name }}: use {{ promo_code }} this month.",
            },
        ],
    ),
    "Time to restock": (
        'Running low on {{ top_category | default: "your favourites" }}?',
        [
            {"type": "text", "text": "It is about time to restock. Order again in one click."},
            {"type": "products", "source": "recommendations"},
        ],
    ),
    "Back in stock": (
        "It's back in stock",
        [
            {"type": "text", "text": 'Good news, {{ first_name | default: "there" }}: the item you wanted is back.'},
            {"type": "products", "source": "product"},
        ],
    ),
}

PRESETS: dict[str, dict] = {
    "welcome": {
        "name": "Welcome series",
        "trigger_event": "customer_created",
        "is_promotional": False,
        "steps": [_send("Welcome 1"), _wait(48), _send("Welcome 2"), _wait(48), _send("Welcome 3")],
    },
    "abandoned_checkout": {
        "name": "Abandoned checkout",
        "trigger_event": "checkout_started",
        "goal_event": "order_placed",
        "steps": [_wait(4), _send("Cart reminder"), _wait(20), _send("Cart last call")],
    },
    "browse_abandonment": {
        "name": "Browse abandonment",
        "trigger_event": "product_viewed",
        "goal_event": "order_placed",
        "steps": [_wait(2), _send("Browse follow-up")],
    },
    "post_purchase": {
        "name": "Post-purchase thank you",
        "trigger_event": "order_placed",
        "is_promotional": False,
        "steps": [_wait(72), _send("Thank you + review")],
    },
    "win_back": {
        "name": "Win-back",
        "trigger": Flow.Trigger.INACTIVITY,
        "goal_event": "order_placed",
        "steps": [_send("We miss you"), {"kind": FlowStep.Kind.ADD_TAG, "tag": "win-back"}],
    },
    "birthday": {
        "name": "Birthday month",
        "trigger": Flow.Trigger.BIRTHDAY_MONTH,
        "steps": [_send("Happy birthday")],
        "unique_promo": "BDAY",
    },
    "replenishment": {
        "name": "Replenishment reminder",
        "trigger": Flow.Trigger.DAYS_AFTER_ORDER,
        "trigger_days": 30,
        "goal_event": "order_placed",
        "steps": [_send("Time to restock")],
    },
    "back_in_stock": {
        "name": "Back in stock",
        "trigger_event": "product_back_in_stock",
        "trigger_days": 30,  # who viewed it or added it to their cart in the last 30 days
        "is_promotional": False,
        "steps": [_send("Back in stock")],
    },
}


@transaction.atomic
def flow_install_preset(*, workspace: Workspace, key: str, activate: bool = False) -> Flow:
    """Create a ready-made flow and its templates (idempotent: an existing flow of that preset is returned)."""
    if key not in PRESETS:
        raise DomainError(f"Unknown ready-made flow “{key}”.")
    preset = PRESETS[key]
    existing = Flow.objects.filter(workspace=workspace, preset=key).first()
    if existing:
        return existing
    flow = Flow.objects.create(
        workspace=workspace,
        name=preset["name"],
        preset=key,
        trigger=preset.get("trigger", Flow.Trigger.EVENT),
        trigger_event=preset.get("trigger_event", ""),
        trigger_days=preset.get("trigger_days", 0),
        goal_event=preset.get("goal_event", ""),
        is_promotional=preset.get("is_promotional", True),
        is_active=activate,
        # Start from the present: a new flow does not replay the workspace's whole history.
        event_cursor=Event.objects.filter(workspace=workspace).order_by("-id").values_list("id", flat=True).first()
        or 0,
    )
    for position, spec in enumerate(preset["steps"]):
        template = None
        if spec.get("template"):
            subject, blocks = PRESET_TEMPLATES[spec["template"]]
            template, _ = EmailTemplate.objects.get_or_create(
                workspace=workspace,
                name=spec["template"],
                defaults={"subject": subject, "blocks": blocks, "unique_promo_prefix": preset.get("unique_promo", "")},
            )
        FlowStep.objects.create(
            workspace=workspace,
            flow=flow,
            position=position,
            kind=spec["kind"],
            wait_hours=spec.get("wait_hours", 0),
            template=template,
            tag=spec.get("tag", ""),
            condition=spec.get("condition", {}),
        )
    return flow


def flow_step_update(
    *,
    workspace: Workspace,
    step: FlowStep,
    wait_hours: int | None = None,
    template_id: int | None = None,
    tag: str | None = None,
    condition: dict | None = None,
) -> FlowStep:
    """Change what one step does: how long a wait lasts, which email a send step sends, which tag, a split's rule
    (already checked by ``flow_builder.condition_from_input``)."""
    fields: dict[str, object] = {}
    if condition is not None and step.kind == FlowStep.Kind.CONDITION:
        fields["condition"] = condition
    if wait_hours is not None and step.kind == FlowStep.Kind.WAIT:
        if not 0 < wait_hours <= 24 * 365:
            raise DomainError("A wait lasts between 1 hour and a year.", field="wait_hours")
        fields["wait_hours"] = wait_hours
    if template_id is not None and step.kind == FlowStep.Kind.SEND_EMAIL:
        if not EmailTemplate.objects.filter(workspace=workspace, pk=template_id).exists():
            raise DomainError("Choose one of your email templates.", field="template")
        fields["template_id"] = template_id
    if tag is not None and step.kind in (FlowStep.Kind.ADD_TAG, FlowStep.Kind.REMOVE_TAG):
        if not tag.strip():
            raise DomainError("A tag needs a name.", field="tag")
        fields["tag"] = tag.strip()[:64]
    if fields:
        FlowStep.objects.filter(workspace=workspace, pk=step.pk).update(**fields)
        for name, value in fields.items():
            setattr(step, name, value)
    return step


def flow_set_active(*, workspace: Workspace, flow: Flow, is_active: bool) -> None:
    from campaigns.flow_builder import flow_problems

    if is_active and (problems := flow_problems(workspace=workspace, flow=flow)):
        raise DomainError("Before turning the flow on: " + " ".join(problems))
    fields: dict[str, object] = {"is_active": is_active}
    if is_active and not flow.is_active and flow.trigger == Flow.Trigger.EVENT:
        # Turning a flow on starts from now, not from the events that piled up while it was off.
        fields["event_cursor"] = (
            Event.objects.filter(workspace=workspace).order_by("-id").values_list("id", flat=True).first() or 0
        )
    Flow.objects.filter(workspace=workspace, pk=flow.pk).update(**fields)


# --- enrolment ---------------------------------------------------------------------------------------------


EnrolRow = tuple[int, str, dt.datetime, int | None, dict]


def _enrol(*, workspace: Workspace, flow: Flow, rows: list[EnrolRow]) -> int:
    """rows: (customer_id, enrollment_key, start, trigger_event_id, context). A customer already inside the flow
    is not enrolled again until that run ends."""
    if not rows:
        return 0
    busy = set(
        FlowRun.objects.filter(
            workspace=workspace, flow=flow, status=FlowRun.Status.ACTIVE, customer_id__in={r[0] for r in rows}
        ).values_list("customer_id", flat=True)
    )
    first_step_id = (
        FlowStep.objects.filter(workspace=workspace, flow=flow, parent__isnull=True)
        .order_by("position", "id")
        .values_list("id", flat=True)
        .first()
    )
    seen: set[int] = set()
    runs = []
    for customer_id, key, start, event_id, context in rows:
        if customer_id in busy or customer_id in seen:
            continue
        seen.add(customer_id)
        runs.append(
            FlowRun(
                workspace=workspace,
                flow=flow,
                customer_id=customer_id,
                enrollment_key=key[:60],
                trigger_event_id=event_id,
                context=context,
                resume_step_id=first_step_id,
                next_run_at=start,
                started_at=start,
            )
        )
    FlowRun.objects.bulk_create(runs, ignore_conflicts=True)
    return len(runs)


def flows_ingest_events(*, workspace: Workspace, batch_size: int = 5000) -> int:
    enrolled = 0
    for flow in Flow.objects.filter(workspace=workspace, is_active=True, trigger=Flow.Trigger.EVENT).exclude(
        trigger_event=""
    ):
        events = Event.objects.filter(workspace=workspace, id__gt=flow.event_cursor, type=flow.trigger_event)
        if flow.trigger_event != BACK_IN_STOCK:
            events = events.filter(customer__isnull=False)
        events = list(events.order_by("id").values("id", "customer_id", "occurred_at", "properties")[:batch_size])
        if not events:
            continue
        last_id = events[-1]["id"]
        rows: list[EnrolRow] = []
        if flow.trigger_event == BACK_IN_STOCK:
            for event in events:
                rows.extend(_back_in_stock_rows(workspace=workspace, flow=flow, event=event))
            events = []  # product events name no customer: the rows above are the enrolments
        for event in events:
            properties = event["properties"] or {}
            key = f"cart:{properties['cart_id']}" if properties.get("cart_id") else f"event:{event['id']}"
            if flow.trigger_event == "customer_created":
                key = "once"
            context = {k: properties[k] for k in ("cart_id", "product_id", "order_id") if k in properties}
            rows.append((event["customer_id"], key, event["occurred_at"], event["id"], context))
        with transaction.atomic():
            enrolled += _enrol(workspace=workspace, flow=flow, rows=rows)
            Flow.objects.filter(workspace=workspace, pk=flow.pk).update(event_cursor=last_id)
    flows_end_at_goal(workspace=workspace)
    return enrolled


def _back_in_stock_rows(*, workspace: Workspace, flow: Flow, event: dict) -> list[EnrolRow]:
    """Everyone who viewed the product or added it to their cart in the flow's last N days (default 30) before
    it came back, and has not bought it since. Storefront events name the product by the store's id (the
    product's ``external_id``), as a string or a number."""
    properties = event["properties"] or {}
    product_pk, external_id = properties.get("product_id"), str(properties.get("external_id") or "")
    if not product_pk or not external_id:
        return []
    matches = Q(properties__product_id=external_id)
    if external_id.isdigit():
        matches |= Q(properties__product_id=int(external_id))
    days = flow.trigger_days or BACK_IN_STOCK_DAYS
    interest = dict(
        Event.objects.filter(
            matches,
            workspace=workspace,
            type__in=INTEREST_EVENTS,
            customer__isnull=False,
            occurred_at__gte=event["occurred_at"] - dt.timedelta(days=days),
            occurred_at__lte=event["occurred_at"],
        )
        .values("customer_id")
        .annotate(last=Max("occurred_at"))
        .values_list("customer_id", "last")
    )
    bought = OrderLine.objects.filter(
        workspace=workspace, product_id=product_pk, order__customer_id__in=list(interest)
    ).values_list("order__customer_id", "order__placed_at")
    buyers = {customer_id for customer_id, placed_at in bought if placed_at >= interest[customer_id]}
    context = {"product_pk": product_pk, "title": properties.get("title", "")}
    return [
        (customer_id, f"back_in_stock:{event['id']}", event["occurred_at"], event["id"], context)
        for customer_id in sorted(interest)
        if customer_id not in buyers
    ]


def flows_end_at_goal(*, workspace: Workspace, now: dt.datetime | None = None) -> int:
    """Runs whose customer did the goal (e.g. ordered) since entering end now; their unsent emails are cancelled."""
    now = now or timezone.now()
    ended = 0
    for flow in Flow.objects.filter(workspace=workspace).exclude(goal_event=""):
        goal = Event.objects.filter(
            workspace=workspace,
            customer_id=OuterRef("customer_id"),
            type=flow.goal_event,
            occurred_at__gte=OuterRef("started_at"),
        )
        run_ids = list(
            FlowRun.objects.filter(workspace=workspace, flow=flow, status=FlowRun.Status.ACTIVE)
            .filter(Exists(goal))
            .values_list("id", flat=True)
        )
        if run_ids:
            FlowRun.objects.filter(workspace=workspace, id__in=run_ids).update(
                status=FlowRun.Status.GOAL_REACHED, ended_at=now
            )
            Message.objects.filter(workspace=workspace, flow_run_id__in=run_ids, status=Message.Status.QUEUED).update(
                status=Message.Status.CANCELLED
            )
            ended += len(run_ids)
    return ended


def flows_enrol_by_date(*, workspace: Workspace, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    today = timezone.localtime(now, workspace.tzinfo).date()
    enrolled = 0
    for flow in Flow.objects.filter(workspace=workspace, is_active=True).exclude(trigger=Flow.Trigger.EVENT):
        if flow.last_evaluated_on == today:
            continue
        customers = Customer.objects.filter(workspace=workspace, merged_into__isnull=True, erased_at__isnull=True)
        rows: list[EnrolRow] = []
        if flow.trigger == Flow.Trigger.BIRTHDAY_MONTH:
            for cid in customers.filter(birth_date__month=today.month).values_list("id", flat=True):
                rows.append((cid, f"birthday:{today.year}", now, None, {}))
        elif flow.trigger == Flow.Trigger.DAYS_AFTER_ORDER:
            day = today - dt.timedelta(days=flow.trigger_days)
            start = dt.datetime.combine(day, dt.time.min, tzinfo=workspace.tzinfo)
            for cid, last in customers.filter(
                last_order_at__gte=start, last_order_at__lt=start + dt.timedelta(days=1)
            ).values_list("id", "last_order_at"):
                rows.append((cid, f"reorder:{last:%Y-%m-%d}", now, None, {}))
        elif flow.trigger == Flow.Trigger.INACTIVITY:
            for cid, first, last, count in customers.filter(
                orders_count__gte=2, last_order_at__lt=now - dt.timedelta(days=30)
            ).values_list("id", "first_order_at", "last_order_at", "orders_count"):
                if first is None or last is None:
                    continue
                usual = (last - first) / (count - 1)
                if now - last > max(usual * 2, dt.timedelta(days=30)):
                    rows.append((cid, f"winback:{last:%Y-%m-%d}", now, None, {}))
        with transaction.atomic():
            enrolled += _enrol(workspace=workspace, flow=flow, rows=rows)
            Flow.objects.filter(workspace=workspace, pk=flow.pk).update(last_evaluated_on=today)
    return enrolled


# --- running -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AdvanceResult:
    runs: int = 0
    emails: int = 0


def condition_holds(*, workspace: Workspace, customer_id: int, condition: dict) -> bool:
    if condition.get("segment_id"):
        from segments.models import Segment
        from segments.selectors import segment_customers

        segment = Segment.objects.filter(workspace=workspace, pk=condition["segment_id"]).first()
        if segment is None:
            return False
        return segment_customers(workspace=workspace, segment=segment).filter(pk=customer_id).exists()
    field, op = condition.get("field"), condition.get("op", "eq")
    if field not in CONDITION_FIELDS or op not in CONDITION_OPS:
        return True  # an empty condition lets everyone through
    lookup = {f"{field}__{CONDITION_OPS[op]}": condition.get("value")}
    matches = Customer.objects.filter(workspace=workspace, pk=customer_id, **lookup).exists()
    return not matches if op == "neq" else matches


def flows_advance(*, workspace: Workspace, now: dt.datetime | None = None, limit: int = 2000) -> AdvanceResult:
    from customers.services import customers_add_tag, customers_remove_tag

    now = now or timezone.now()
    flows_end_at_goal(workspace=workspace, now=now)
    runs = list(
        FlowRun.objects.filter(
            workspace=workspace, status=FlowRun.Status.ACTIVE, next_run_at__lte=now, flow__is_active=True
        )
        .select_related("flow")
        .order_by("next_run_at")[:limit]
    )
    trees: dict[int, FlowTree] = {}
    emails = 0
    for run in runs:
        if run.flow_id not in trees:
            trees[run.flow_id] = FlowTree.load(workspace=workspace, flow=run.flow)
        tree = trees[run.flow_id]
        step = tree.steps.get(run.resume_step_id) if run.resume_step_id else None
        first = tree.first()
        due = run.next_run_at
        waiting: FlowStep | None = None
        while step is not None:
            if step.kind == FlowStep.Kind.WAIT:
                # Waits count from when the step became due (the flow's first one from the trigger event itself),
                # so a late tick does not stretch the flow; but a run far behind (a flow switched on over old
                # events) never bunches its emails together: later waits start at most LATE_GRACE in the past.
                base = due if step is first else max(due, now - LATE_GRACE)
                due = base + dt.timedelta(hours=step.wait_hours)
                if due > now:
                    waiting, step = step, tree.after(step)
                    break
            elif step.kind == FlowStep.Kind.CONDITION:
                holds = condition_holds(workspace=workspace, customer_id=run.customer_id, condition=step.condition)
                step = tree.enter(step, holds=holds)
                continue
            elif step.kind == FlowStep.Kind.SEND_EMAIL and step.template_id:
                created = Message.objects.bulk_create(
                    [
                        Message(
                            workspace=workspace,
                            flow_step=step,
                            flow_run=run,
                            customer_id=run.customer_id,
                            send_after=now,
                        )
                    ],
                    ignore_conflicts=True,
                )
                emails += len(created)
            elif step.kind == FlowStep.Kind.ADD_TAG and step.tag:
                customers_add_tag(workspace=workspace, customer_ids=[run.customer_id], tag=step.tag)
            elif step.kind == FlowStep.Kind.REMOVE_TAG and step.tag:
                customers_remove_tag(workspace=workspace, customer_ids=[run.customer_id], tag=step.tag)
            step = tree.after(step)
        status = FlowRun.Status.ACTIVE if waiting is not None else FlowRun.Status.COMPLETED
        FlowRun.objects.filter(workspace=workspace, pk=run.pk, status=FlowRun.Status.ACTIVE).update(
            resume_step=step,
            waiting_step=waiting,
            next_run_at=due,
            status=status,
            ended_at=None if status == FlowRun.Status.ACTIVE else now,
        )
    return AdvanceResult(runs=len(runs), emails=emails)


def flow_step_counts(*, workspace: Workspace, flow: Flow) -> dict[int | None, int]:
    """Active runs per wait step they are waiting in; ``None``: runs about to move on (just entered, or due)."""
    return dict(
        FlowRun.objects.filter(workspace=workspace, flow=flow, status=FlowRun.Status.ACTIVE)
        .values("waiting_step_id")
        .annotate(n=Count("id"))
        .values_list("waiting_step_id", "n")
    )
