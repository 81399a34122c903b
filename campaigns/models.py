"""Email templates, one-off campaigns, automated flows and the messages they send.

Every recipient of every send is one ``Message`` row, unique per (workspace, campaign, customer) or
(workspace, flow step, customer, flow run). A worker claims rows with a conditional update (queued -> sending)
before it sends, so a retried or duplicated task never sends twice (see ``campaigns.sending``).

Audiences are segment ids kept as JSON lists rather than a many-to-many to ``segments.Segment``: a deleted
segment must not rewrite the history of a campaign that was sent to it, and the audience is frozen into
Message rows at launch anyway.
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from crm.models import TenantModel, Workspace


def message_token() -> str:
    return secrets.token_urlsafe(18)


class SendingPolicy(TenantModel):
    """Per-workspace sending rules, created with defaults on first use."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    frequency_cap_hours = models.PositiveIntegerField(
        default=16, help_text="At most one marketing email per customer in this many hours (0 = no cap)."
    )
    quiet_hours_start = models.TimeField(null=True, blank=True, help_text="No email from this local time...")
    quiet_hours_end = models.TimeField(null=True, blank=True, help_text="...until this local time.")
    hold_out_open_tickets = models.BooleanField(
        default=True, help_text="Hold customers with an open support ticket out of promotional sends."
    )
    hold_out_csat_at_most = models.PositiveSmallIntegerField(
        default=2, help_text="Hold out customers whose last CSAT score is at most this (0 = off)."
    )
    hold_out_csat_days = models.PositiveIntegerField(default=30, help_text="...if that score is this recent.")
    attribution_days = models.PositiveIntegerField(default=5, help_text="An order this many days after a click counts.")
    from_email = models.CharField(max_length=200, blank=True, default="", help_text="Empty = the site default.")
    postal_address = models.CharField(max_length=255, blank=True, default="", help_text="Shown in every footer.")
    updated_at = models.DateTimeField(auto_now=True)


class EmailTemplate(TenantModel):
    class Format(models.TextChoices):
        BLOCKS = "blocks", "Blocks"
        HTML = "html", "HTML"

    name = models.CharField(max_length=120)
    subject = models.CharField(max_length=200)
    preheader = models.CharField(max_length=200, blank=True, default="")
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.BLOCKS)
    # [{"type": "text", "text": "..."}, {"type": "image", "src", "alt", "href"}, {"type": "button", "label", "url"},
    #  {"type": "products", "source": "recommendations"|"cart"|"bestsellers", "count": 3}]
    blocks = models.JSONField(default=list, blank=True)
    html = models.TextField(blank=True, default="")
    promo_code = models.CharField(max_length=60, blank=True, default="", help_text="Shared code for {{ promo_code }}")
    unique_promo_prefix = models.CharField(
        max_length=20, blank=True, default="", help_text="Set to give each recipient a unique code PREFIX-XXXXXX."
    )
    unique_promo_percent = models.PositiveSmallIntegerField(
        default=10, help_text="What a unique code takes off (percent), when the codes are created in your store."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="email_template_unique_name")]

    def __str__(self) -> str:
        return self.name


class Campaign(TenantModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"

    class Metric(models.TextChoices):
        OPEN = "open", "Open rate"
        CLICK = "click", "Click rate"

    name = models.CharField(max_length=120)
    template = models.ForeignKey(EmailTemplate, on_delete=models.RESTRICT, related_name="campaigns")
    subject_b = models.CharField(max_length=200, blank=True, default="", help_text="Set to A/B test the subject.")
    audience_segment_ids = models.JSONField(default=list, blank=True)
    excluded_segment_ids = models.JSONField(default=list, blank=True)
    is_promotional = models.BooleanField(default=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    ab_sample_percent = models.PositiveSmallIntegerField(default=20)
    ab_wait_hours = models.PositiveSmallIntegerField(default=4)
    ab_metric = models.CharField(max_length=10, choices=Metric.choices, default=Metric.OPEN)
    ab_winner = models.CharField(max_length=1, blank=True, default="")
    ab_decided_at = models.DateTimeField(null=True, blank=True)
    recipients_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "status", "scheduled_at"], name="campaign_ws_status_time")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_ab_test(self) -> bool:
        return bool(self.subject_b)


class Flow(TenantModel):
    class Trigger(models.TextChoices):
        EVENT = "event", "An event happens"
        BIRTHDAY_MONTH = "birthday_month", "Birthday month"
        DAYS_AFTER_ORDER = "days_after_order", "N days after the last order"
        INACTIVITY = "inactivity", "No order for longer than usual"

    name = models.CharField(max_length=120)
    preset = models.CharField(max_length=40, blank=True, default="")
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.EVENT)
    trigger_event = models.CharField(max_length=40, blank=True, default="")
    trigger_days = models.PositiveIntegerField(default=0)
    goal_event = models.CharField(max_length=40, blank=True, default="", help_text="Reaching it ends the flow.")
    is_promotional = models.BooleanField(default=True)
    is_active = models.BooleanField(default=False)
    # The flow reads new customers.Event rows with id > event_cursor: no signals, replays are harmless.
    event_cursor = models.BigIntegerField(default=0)
    last_evaluated_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="flow_unique_name")]

    def __str__(self) -> str:
        return self.name


class FlowStep(TenantModel):
    """One step of a flow. Steps form lists: the flow's own (``parent`` empty) and, under each split, a "yes" and
    a "no" list; ``position`` orders a step within its list."""

    class Kind(models.TextChoices):
        WAIT = "wait", "Wait"
        CONDITION = "condition", "Split: yes / no"
        SEND_EMAIL = "send_email", "Send email"
        ADD_TAG = "add_tag", "Add tag"
        REMOVE_TAG = "remove_tag", "Remove tag"

    class Branch(models.TextChoices):
        YES = "yes", "Yes"
        NO = "no", "No"

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="steps")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    branch = models.CharField(max_length=3, choices=Branch.choices, blank=True, default="")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    wait_hours = models.PositiveIntegerField(default=0)
    template = models.ForeignKey(EmailTemplate, null=True, blank=True, on_delete=models.RESTRICT, related_name="+")
    tag = models.CharField(max_length=64, blank=True, default="")
    # Split: {"field": "orders_count", "op": "gte", "value": 1} or {"segment_id": 3}; customers who match take
    # the "yes" list, the others the "no" list, then both go on with the step after the split.
    condition = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        if self.kind == self.Kind.WAIT:
            return f"Wait {self.wait_hours} h"
        if self.kind == self.Kind.SEND_EMAIL:
            return f"Send “{self.template}”"
        if self.kind in (self.Kind.ADD_TAG, self.Kind.REMOVE_TAG):
            return f"{self.get_kind_display()} “{self.tag}”"
        return "Split"


class FlowRun(TenantModel):
    """One customer's way through a flow, entered once per ``enrollment_key`` (trigger event id, year, ...)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Waiting or running"
        COMPLETED = "completed", "Completed"
        GOAL_REACHED = "goal", "Reached the goal"
        EXITED = "exited", "Left at a condition"

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="runs")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    enrollment_key = models.CharField(max_length=60)
    trigger_event_id = models.BigIntegerField(null=True, blank=True)
    context = models.JSONField(default=dict, blank=True)
    # The next step to run (empty: nothing left) and, while the run waits, the wait step it waits in (what the
    # flow page counts). The builder moves runs on before it deletes a step they point to.
    resume_step = models.ForeignKey(FlowStep, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    waiting_step = models.ForeignKey(FlowStep, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    next_run_at = models.DateTimeField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "flow", "customer", "enrollment_key"], name="flow_run_unique")
        ]
        indexes = [models.Index(fields=["workspace", "status", "next_run_at"], name="flow_run_ws_due")]


class Message(TenantModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        WAITING_WINNER = "waiting", "Waiting for the A/B winner"
        SUPPRESSED = "suppressed", "Suppressed"
        HELD_OUT = "held_out", "Held out (support)"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    # A row is updated twice per send (claimed, then sent) and both updates change indexed columns, so every index
    # costs on each: the plain workspace index is left out (every index below leads with workspace), the flow
    # columns are indexed only where set, and the token has its unique index without a LIKE twin.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="messages")
    flow_step = models.ForeignKey(
        FlowStep, null=True, blank=True, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    flow_run = models.ForeignKey(
        FlowRun, null=True, blank=True, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    variant = models.CharField(max_length=1, blank=True, default="")
    token = models.CharField(max_length=32, default=message_token)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    send_after = models.DateTimeField()
    deferred_reason = models.CharField(max_length=40, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=16, blank=True, default="")
    to_email = models.CharField(max_length=254, blank=True, default="")
    subject = models.CharField(max_length=200, blank=True, default="")
    error = models.CharField(max_length=255, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    esp_message_id = models.CharField(max_length=200, blank=True, default="")
    opened_at = models.DateTimeField(null=True, blank=True)
    machine_opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "campaign", "customer"],
                condition=Q(campaign__isnull=False),
                name="message_unique_campaign_customer",
            ),
            models.UniqueConstraint(
                fields=["workspace", "flow_step", "customer", "flow_run"],
                condition=Q(flow_step__isnull=False),
                name="message_unique_step_customer",
            ),
            models.UniqueConstraint(fields=["token"], name="message_unique_token"),
        ]
        indexes = [
            models.Index(fields=["workspace", "status", "send_after"], name="message_ws_status_due"),
            models.Index(fields=["workspace", "campaign", "status"], name="message_ws_campaign_status"),
            models.Index(fields=["workspace", "customer", "sent_at"], name="message_ws_customer_sent"),
            # ESP webhooks find a message by the ESP's id alone (they carry no workspace), like the token.
            models.Index(fields=["esp_message_id"], name="message_esp_id", condition=~Q(esp_message_id="")),
            models.Index(fields=["flow_step"], name="message_flow_step", condition=Q(flow_step__isnull=False)),
            models.Index(fields=["flow_run"], name="message_flow_run", condition=Q(flow_run__isnull=False)),
        ]


class Suppression(TenantModel):
    """An address that must not get marketing email again, whatever its consent column says."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Hard bounce"
        COMPLAINED = "complained", "Spam complaint"

    email = models.CharField(max_length=254)
    reason = models.CharField(max_length=15, choices=Reason.choices)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "email"], name="suppression_unique_email")]


class Conversion(TenantModel):
    """An order attributed to the last message clicked within the attribution window before it."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="conversions")
    order = models.ForeignKey("customers.Order", on_delete=models.CASCADE, related_name="+")
    revenue = models.DecimalField(max_digits=14, decimal_places=2)
    placed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "order"], name="conversion_unique_order")]


class PromoCode(TenantModel):
    """A recipient's unique promo code, made before the message is sent: registered with the workspace's store
    (``registered_at`` set) or, with no store connected, kept in the CRM only."""

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="promo")
    code = models.CharField(max_length=40)
    store_connection_id = models.BigIntegerField(null=True, blank=True)  # integrations.StoreConnection
    registered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "code"], name="promo_code_unique_code")]
