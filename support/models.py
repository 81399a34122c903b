"""Support: tickets and their conversations, teams, routing rules, SLA targets, canned replies and surveys.

Every model is tenant-owned (``TenantModel``). Ticket numbers are per workspace and are the reference that goes
into email subjects (``[#1042]``); outgoing and incoming emails keep their Message-ID on the message row, which is
how a reply threads back into its ticket.
"""

import secrets

from django.conf import settings
from django.db import models

from crm.models import Membership, TenantModel, Workspace


class TicketStatus(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    SOLVED = "solved", "Solved"
    CLOSED = "closed", "Closed"


UNRESOLVED_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)


class TicketPriority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class TicketChannel(models.TextChoices):
    EMAIL = "email", "Email"
    WEB_FORM = "web_form", "Web form"
    CHAT = "chat", "Chat"
    PHONE = "phone", "Phone"


class Team(TenantModel):
    name = models.CharField(max_length=80)
    members = models.ManyToManyField(Membership, through="TeamMember", related_name="support_teams")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="support_team_unique_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamMember(TenantModel):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="links")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="support_team_links")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "team", "membership"], name="support_team_member_unique")
        ]


class SupportSettings(TenantModel):
    """One row per workspace, created on first use."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    # The secret part of this workspace's inbound webhook URL (/support/inbound/<token>/<esp>/).
    inbound_token = models.CharField(max_length=64, unique=True, default=secrets.token_urlsafe)
    # Where customers' replies should go (the address the ESP's inbound route or the read mailbox receives).
    reply_to_email = models.EmailField(blank=True, default="")
    categories = models.JSONField(default=list, blank=True)
    default_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    is_csat_enabled = models.BooleanField(default=True)
    csat_delay_minutes = models.PositiveIntegerField(default=60)
    is_nps_enabled = models.BooleanField(default=True)
    nps_delay_days = models.PositiveIntegerField(default=14)
    # A customer is asked for NPS at most once in this many days.
    nps_quiet_days = models.PositiveIntegerField(default=90)
    # The highest customers.Order id already considered for NPS (orders are read by cursor, like flows read events).
    nps_order_cursor = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    DEFAULT_CATEGORIES = ["Order status", "Returns & refunds", "Shipping", "Product question", "Billing", "Other"]

    @property
    def category_choices(self) -> list[str]:
        return self.categories or self.DEFAULT_CATEGORIES


class SlaPolicy(TenantModel):
    """Targets in business minutes (the workspace's business hours and timezone) for one priority."""

    priority = models.CharField(max_length=10, choices=TicketPriority.choices)
    first_response_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "priority"], name="support_sla_unique_priority")]

    DEFAULTS = {
        TicketPriority.URGENT: (60, 4 * 60),
        TicketPriority.HIGH: (2 * 60, 8 * 60),
        TicketPriority.NORMAL: (4 * 60, 16 * 60),
        TicketPriority.LOW: (8 * 60, 40 * 60),
    }


class Ticket(TenantModel):
    number = models.PositiveIntegerField()
    subject = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=TicketStatus.choices, default=TicketStatus.NEW)
    priority = models.CharField(max_length=10, choices=TicketPriority.choices, default=TicketPriority.NORMAL)
    channel = models.CharField(max_length=10, choices=TicketChannel.choices, default=TicketChannel.EMAIL)
    category = models.CharField(max_length=60, blank=True, default="")
    language = models.CharField(max_length=10, blank=True, default="")
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    requester_email = models.EmailField(blank=True, default="")
    requester_name = models.CharField(max_length=150, blank=True, default="")
    assignee = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tickets"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    order = models.ForeignKey("customers.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Why it landed where it did ("rule: VIPs to senior", "load balance"), shown to the rep.
    routing_note = models.CharField(max_length=200, blank=True, default="")

    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    first_responded_at = models.DateTimeField(null=True, blank=True)
    solved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    last_customer_message_at = models.DateTimeField(null=True, blank=True)
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "number"], name="support_ticket_unique_number")]
        indexes = [
            models.Index(fields=["workspace", "status", "-updated_at"], name="ticket_ws_status_updated"),
            models.Index(fields=["workspace", "-updated_at"], name="ticket_ws_updated"),
            models.Index(fields=["workspace", "assignee", "-assigned_at"], name="ticket_ws_assignee_assigned"),
            models.Index(fields=["workspace", "assignee", "status"], name="ticket_ws_assignee_status"),
            models.Index(fields=["workspace", "customer", "-created_at"], name="ticket_ws_customer"),
            models.Index(fields=["workspace", "created_at"], name="ticket_ws_created"),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.subject}"

    @property
    def reference(self) -> str:
        return f"[#{self.number}]"

    @property
    def is_resolved(self) -> bool:
        return self.status in (TicketStatus.SOLVED, TicketStatus.CLOSED)

    @property
    def next_due_at(self):
        """The SLA clock that is running: first response until someone answers, then resolution."""
        if self.is_resolved:
            return None
        if self.first_responded_at is None and self.first_response_due_at:
            return min(self.first_response_due_at, self.resolution_due_at or self.first_response_due_at)
        return self.resolution_due_at

    @property
    def next_due_label(self) -> str:
        return "First reply" if self.first_responded_at is None else "Resolution"

    @property
    def sla_status(self) -> str:
        """breached / at_risk (under an hour left) / ok / met, as the rep should see it now."""
        from django.utils import timezone

        due = self.next_due_at
        if due is None:
            breached = (
                self.first_responded_at
                and self.first_response_due_at
                and self.first_responded_at > self.first_response_due_at
            ) or (self.solved_at and self.resolution_due_at and self.solved_at > self.resolution_due_at)
            return "breached" if breached else "met"
        left = due - timezone.now()
        if left.total_seconds() < 0:
            return "breached"
        return "at_risk" if left.total_seconds() < 3600 else "ok"


class TicketTag(TenantModel):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=50)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "ticket", "name"], name="support_tag_unique")]
        indexes = [models.Index(fields=["workspace", "name"], name="ticket_tag_ws_name")]

    def __str__(self) -> str:
        return self.name


class MessageKind(models.TextChoices):
    CUSTOMER = "customer", "From the customer"
    REPLY = "reply", "Public reply"
    NOTE = "note", "Internal note"


class DeliveryStatus(models.TextChoices):
    NONE = "", "Not emailed"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class TicketMessage(TenantModel):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=10, choices=MessageKind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Sanitised with nh3 before it is stored; rendered with |safe only because of that.
    body_html = models.TextField()
    body_text = models.TextField(blank=True, default="")
    # The RFC 5322 Message-ID of the email this message came in as or went out as (angle brackets included).
    email_message_id = models.CharField(max_length=255, null=True, blank=True)
    delivery_status = models.CharField(max_length=10, choices=DeliveryStatus.choices, blank=True, default="")
    delivery_error = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "email_message_id"], name="support_message_unique_msgid")
        ]
        indexes = [models.Index(fields=["workspace", "ticket", "created_at"], name="ticket_msg_ws_ticket")]
        ordering = ["created_at", "id"]

    @property
    def is_note(self) -> bool:
        return self.kind == MessageKind.NOTE


class Attachment(TenantModel):
    message = models.ForeignKey(TicketMessage, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="support/%Y/%m/")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()

    MAX_SIZE = 10 * 1024 * 1024
    MAX_PER_MESSAGE = 5
    ALLOWED_TYPES = {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "text/csv",
        "application/zip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }


class CannedReply(TenantModel):
    """A saved answer. ``{{ customer.first_name }}``-style merge fields from a fixed list; never a Django template."""

    title = models.CharField(max_length=100)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class RuleCondition(models.TextChoices):
    CATEGORY = "category", "Category is"
    SEGMENT = "segment", "Customer is in segment"
    LANGUAGE = "language", "Language is"
    ORDER_VALUE = "order_value", "Linked order value at least"
    CUSTOMER_SPENT = "customer_spent", "Customer lifetime spend at least"


class RoutingRule(TenantModel):
    """Evaluated by ``position``; the first active rule whose condition matches sends the ticket to its team."""

    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    condition = models.CharField(max_length=20, choices=RuleCondition.choices)
    value = models.CharField(max_length=100, blank=True, default="")
    # segments.Segment id (segments is a sibling app; referenced by id so support runs without it).
    segment_id = models.BigIntegerField(null=True, blank=True)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="rules")
    set_priority = models.CharField(max_length=10, choices=TicketPriority.choices, blank=True, default="")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class SurveyKind(models.TextChoices):
    CSAT = "csat", "CSAT"
    NPS = "nps", "NPS"


class SurveyStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    ANSWERED = "answered", "Answered"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


def survey_token() -> str:
    return secrets.token_urlsafe(24)


class Survey(TenantModel):
    kind = models.CharField(max_length=5, choices=SurveyKind.choices)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="surveys")
    order = models.ForeignKey("customers.Order", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=64, unique=True, default=survey_token)
    status = models.CharField(max_length=10, choices=SurveyStatus.choices, default=SurveyStatus.SCHEDULED)
    send_after = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True, default="")
    answered_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "kind", "ticket"], name="support_survey_unique_ticket"),
            models.UniqueConstraint(fields=["workspace", "kind", "order"], name="support_survey_unique_order"),
        ]
        indexes = [models.Index(fields=["workspace", "status", "send_after"], name="survey_ws_status_due")]

    @property
    def scale(self) -> range:
        return range(1, 6) if self.kind == SurveyKind.CSAT else range(0, 11)
