"""Reads for the campaigns pages and for other apps (the customer card)."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404

from campaigns.models import Campaign, Conversion, EmailTemplate, Flow, FlowStep, Message, Suppression
from crm.models import Workspace
from customers.models import Customer


def template_list(*, workspace: Workspace) -> QuerySet[EmailTemplate]:
    return EmailTemplate.objects.filter(workspace=workspace).order_by("name")


def template_get(*, workspace: Workspace, template_id: int) -> EmailTemplate:
    return get_object_or_404(EmailTemplate.objects.filter(workspace=workspace), pk=template_id)


def campaign_list(*, workspace: Workspace) -> QuerySet[Campaign]:
    return (
        Campaign.objects.filter(workspace=workspace)
        .select_related("template")
        .annotate(
            sent=Count("messages", filter=Q(messages__status=Message.Status.SENT)),
            opened=Count("messages", filter=Q(messages__opened_at__isnull=False)),
            clicked=Count("messages", filter=Q(messages__clicked_at__isnull=False)),
        )
        .order_by("-created_at")
    )


def campaign_get(*, workspace: Workspace, campaign_id: int) -> Campaign:
    return get_object_or_404(Campaign.objects.filter(workspace=workspace).select_related("template"), pk=campaign_id)


def flow_list(*, workspace: Workspace) -> QuerySet[Flow]:
    return (
        Flow.objects.filter(workspace=workspace)
        .annotate(waiting=Count("runs", filter=Q(runs__status="active")), entered=Count("runs"))
        .order_by("name")
    )


def flow_get(*, workspace: Workspace, flow_id: int) -> Flow:
    return get_object_or_404(Flow.objects.filter(workspace=workspace), pk=flow_id)


def flow_step_get(*, workspace: Workspace, flow: Flow, step_id: int) -> FlowStep:
    return get_object_or_404(FlowStep.objects.filter(workspace=workspace, flow=flow), pk=step_id)


def flow_steps(*, workspace: Workspace, flow: Flow) -> list[FlowStep]:
    return list(FlowStep.objects.filter(workspace=workspace, flow=flow).select_related("template").order_by("position"))


@dataclass(frozen=True, kw_only=True)
class BuilderRow:
    """One line of the flow builder: a step, the header of a split's branch, or the place to add a step."""

    kind: str  # "step", "branch", "add"
    depth: int
    step: FlowStep | None = None
    label: str = ""
    waiting: int = 0
    is_first: bool = False
    is_last: bool = False
    parent_id: int | None = None
    branch: str = ""


def flow_builder_rows(*, workspace: Workspace, flow: Flow) -> dict:
    """The flow's steps in display order (splits followed by their yes and no lists), each wait step with how
    many customers wait in it, plus where steps can be added; and how many runs are about to move on."""
    from campaigns.flow_builder import condition_label
    from campaigns.flow_tree import FlowTree
    from campaigns.flows import flow_step_counts
    from segments.models import Segment

    tree = FlowTree.load(workspace=workspace, flow=flow)
    counts = flow_step_counts(workspace=workspace, flow=flow)
    segment_names = dict(Segment.objects.filter(workspace=workspace).values_list("id", "name"))
    rows: list[BuilderRow] = []

    def add_list(parent_id: int | None, branch: str, depth: int) -> None:
        items = tree.items(parent_id, branch)
        for index, step in enumerate(items):
            label = condition_label(step.condition, segment_names) if step.kind == FlowStep.Kind.CONDITION else ""
            rows.append(
                BuilderRow(
                    kind="step",
                    depth=depth,
                    step=step,
                    label=label,
                    waiting=counts.get(step.pk, 0),
                    is_first=index == 0,
                    is_last=index == len(items) - 1,
                )
            )
            if step.kind == FlowStep.Kind.CONDITION:
                for name, title in FlowStep.Branch.choices:
                    rows.append(BuilderRow(kind="branch", depth=depth + 1, label=title, parent_id=step.pk, branch=name))
                    add_list(step.pk, name, depth + 1)
        rows.append(BuilderRow(kind="add", depth=depth, parent_id=parent_id, branch=branch))

    add_list(None, "", 0)
    return {"rows": rows, "moving_on": counts.get(None, 0), "waiting": sum(v for k, v in counts.items() if k)}


def suppression_list(*, workspace: Workspace) -> QuerySet[Suppression]:
    return Suppression.objects.filter(workspace=workspace).order_by("-created_at")


def suppression_get(*, workspace: Workspace, suppression_id: int) -> Suppression:
    return get_object_or_404(Suppression.objects.filter(workspace=workspace), pk=suppression_id)


def preview_customers(*, workspace: Workspace, limit: int = 40) -> QuerySet[Customer]:
    return (
        Customer.objects.filter(workspace=workspace, merged_into__isnull=True)
        .exclude(email="")
        .order_by("-orders_count", "id")[:limit]
    )


@dataclass(frozen=True, kw_only=True)
class ReportRow:
    """The numbers of one send: a campaign, an A/B variant or a flow step."""

    label: str
    recipients: int = 0
    sent: int = 0
    bounced: int = 0
    opened: int = 0
    machine_opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    complained: int = 0
    conversions: int = 0
    revenue: Decimal = Decimal("0")

    @property
    def delivered(self) -> int:
        return self.sent - self.bounced

    def rate(self, value: int) -> float:
        return round(100 * value / self.delivered, 1) if self.delivered else 0.0

    @property
    def open_rate(self) -> float:
        return self.rate(self.opened)

    @property
    def click_rate(self) -> float:
        return self.rate(self.clicked)

    @property
    def unsubscribe_rate(self) -> float:
        return self.rate(self.unsubscribed)

    @property
    def revenue_per_recipient(self) -> Decimal:
        return (self.revenue / self.delivered).quantize(Decimal("0.01")) if self.delivered else Decimal("0.00")


@dataclass(frozen=True, kw_only=True)
class Progress:
    total: int
    done: int
    by_status: dict = field(default_factory=dict)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


REPORT_AGGREGATES = {
    "recipients": Count("id"),
    "sent": Count("id", filter=Q(status=Message.Status.SENT)),
    "bounced": Count("id", filter=Q(bounced_at__isnull=False)),
    "opened": Count("id", filter=Q(opened_at__isnull=False)),
    "machine_opened": Count("id", filter=Q(machine_opened_at__isnull=False, opened_at__isnull=True)),
    "clicked": Count("id", filter=Q(clicked_at__isnull=False)),
    "unsubscribed": Count("id", filter=Q(unsubscribed_at__isnull=False)),
    "complained": Count("id", filter=Q(complained_at__isnull=False)),
}


def _rows(messages: QuerySet[Message], group: str, labels) -> list[ReportRow]:
    counts = {r[group]: r for r in messages.values(group).annotate(**REPORT_AGGREGATES)}
    money = {
        r[f"message__{group}"]: r
        for r in Conversion.objects.filter(message__in=messages)
        .values(f"message__{group}")
        .annotate(conversions=Count("id"), revenue=Sum("revenue"))
    }
    rows = []
    for key, row in counts.items():
        extra = money.get(key, {})
        rows.append(
            ReportRow(
                label=labels(key),
                **{k: row[k] for k in REPORT_AGGREGATES},
                conversions=extra.get("conversions", 0),
                revenue=extra.get("revenue") or Decimal("0"),
            )
        )
    return rows


def campaign_report(*, workspace: Workspace, campaign: Campaign) -> tuple[ReportRow, list[ReportRow]]:
    """The whole campaign and, for an A/B test, one row per subject line."""
    messages = Message.objects.filter(workspace=workspace, campaign=campaign)
    whole = _rows(messages.annotate(), "campaign_id", lambda _: "All recipients")
    total = whole[0] if whole else ReportRow(label="All recipients")
    variants = []
    if campaign.is_ab_test:

        def label(variant: str) -> str:
            if variant == "A":
                return f"A: {campaign.template.subject}"
            if variant == "B":
                return f"B: {campaign.subject_b}"
            return "Waiting for the winner"

        variants = sorted(_rows(messages.exclude(variant=""), "variant", label), key=lambda r: r.label)
    return total, variants


def campaign_progress(*, workspace: Workspace, campaign: Campaign) -> Progress:
    by_status = dict(
        Message.objects.filter(workspace=workspace, campaign=campaign)
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    total = sum(by_status.values())
    pending = sum(
        by_status.get(s, 0) for s in (Message.Status.QUEUED, Message.Status.SENDING, Message.Status.WAITING_WINNER)
    )
    return Progress(total=total, done=total - pending, by_status=by_status)


def flow_report(*, workspace: Workspace, flow: Flow) -> list[ReportRow]:
    steps = {s.pk: s for s in FlowStep.objects.filter(workspace=workspace, flow=flow).select_related("template")}
    messages = Message.objects.filter(workspace=workspace, flow_step__flow=flow)
    rows = _rows(messages, "flow_step_id", lambda pk: f"{steps[pk].position + 1}. {steps[pk]}" if pk in steps else "?")
    return sorted(rows, key=lambda r: r.label)


def customer_messages(*, workspace: Workspace, customer: Customer, limit: int = 5) -> list[Message]:
    return list(
        Message.objects.filter(workspace=workspace, customer=customer, status=Message.Status.SENT)
        .select_related("campaign", "flow_step__flow")
        .order_by("-sent_at")[:limit]
    )
