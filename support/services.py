"""Every write of the support app: tickets, their conversation, assignment, status, email delivery.

Routing lives in ``support.routing``, inbound email in ``support.inbound``, surveys in ``support.surveys``;
they call back into the functions here. Customer columns (open tickets, CSAT, NPS) are written only through
``customers.services.customer_update_support_signals``; timeline rows only through ``event_record``.
"""

import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import make_msgid

import nh3
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.html import escape, linebreaks, strip_tags

from crm.exceptions import DomainError
from crm.models import Membership, Workspace
from crm.permissions import Capability, role_can
from support import sla
from support.models import (
    UNRESOLVED_STATUSES,
    Attachment,
    CannedReply,
    DeliveryStatus,
    MessageKind,
    SlaPolicy,
    SupportSettings,
    Team,
    Ticket,
    TicketChannel,
    TicketMessage,
    TicketPriority,
    TicketStatus,
    TicketTag,
)

logger = logging.getLogger(__name__)

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "div",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan"},
    "th": {"colspan"},
}


# --- Bodies and attachments -------------------------------------------------------------------------------------


def html_sanitise(html: str) -> str:
    """Untrusted HTML (an email, a form) -> HTML safe to render: no scripts, handlers, styles or iframes."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    ).strip()


def text_to_html(text: str) -> str:
    return linebreaks(escape(text.strip()))


def html_to_text(html: str) -> str:
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</tr>", "\n", html)
    text = strip_tags(text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


@dataclass(frozen=True, kw_only=True)
class IncomingFile:
    """An attachment on its way in (an upload or an email part), before it is validated and stored."""

    filename: str
    content_type: str
    content: bytes


def attachments_validate(files: Sequence[IncomingFile]) -> None:
    if len(files) > Attachment.MAX_PER_MESSAGE:
        raise DomainError(f"At most {Attachment.MAX_PER_MESSAGE} attachments per message.", field="attachments")
    for incoming in files:
        content_type = (incoming.content_type or "").split(";")[0].strip().lower()
        if content_type not in Attachment.ALLOWED_TYPES:
            raise DomainError(
                f"{incoming.filename}: files of type {content_type or 'unknown'} cannot be attached "
                "(images, PDF, text, CSV, ZIP, Word and Excel documents are accepted).",
                field="attachments",
            )
        if len(incoming.content) > Attachment.MAX_SIZE:
            raise DomainError(
                f"{incoming.filename} is {len(incoming.content) / 1048576:.1f} MB; the limit is "
                f"{Attachment.MAX_SIZE // 1048576} MB.",
                field="attachments",
            )


def _attachments_store(*, workspace: Workspace, message: TicketMessage, files: Sequence[IncomingFile]) -> None:
    for incoming in files:
        name = re.sub(r"[^\w.\- ]", "_", incoming.filename)[:120] or "attachment"
        attachment = Attachment(
            workspace=workspace,
            message=message,
            filename=name,
            content_type=incoming.content_type.split(";")[0].strip().lower(),
            size=len(incoming.content),
        )
        attachment.file.save(name, ContentFile(incoming.content), save=False)
        attachment.save()


# --- Settings and SLA -------------------------------------------------------------------------------------------


def support_settings_for(*, workspace: Workspace) -> SupportSettings:
    found, _ = SupportSettings.objects.get_or_create(workspace=workspace)
    return found


def sla_targets(*, workspace: Workspace, priority: str) -> tuple[int, int]:
    """(first response, resolution) in business minutes for ``priority``."""
    policy = SlaPolicy.objects.filter(workspace=workspace, priority=priority).first()
    if policy is not None:
        return policy.first_response_minutes, policy.resolution_minutes
    return SlaPolicy.DEFAULTS[TicketPriority(priority)]


def sla_policies_save(*, workspace: Workspace, targets: dict[str, tuple[int, int]]) -> None:
    for priority, (first_response, resolution) in targets.items():
        if first_response <= 0 or resolution <= 0:
            raise DomainError(f"{priority}: targets must be positive minutes.", field=priority)
        if resolution < first_response:
            raise DomainError(f"{priority}: resolution cannot be due before the first response.", field=priority)
        SlaPolicy.objects.update_or_create(
            workspace=workspace,
            priority=priority,
            defaults={"first_response_minutes": first_response, "resolution_minutes": resolution},
        )


def _due_times(*, workspace: Workspace, priority: str, start: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    first_response, resolution = sla_targets(workspace=workspace, priority=priority)
    hours, tz = workspace.business_hours or {}, workspace.timezone
    return (
        sla.add_business_minutes(start, first_response, business_hours=hours, timezone=tz),
        sla.add_business_minutes(start, resolution, business_hours=hours, timezone=tz),
    )


# --- Timeline and customer signals -------------------------------------------------------------------------------


def _timeline(*, workspace: Workspace, ticket: Ticket, type: str, occurred_at: dt.datetime, **properties) -> None:  # noqa: A002
    if ticket.customer_id is None:
        return
    from customers.services import event_record

    event_record(
        workspace=workspace,
        customer=ticket.customer,
        type=type,
        occurred_at=occurred_at,
        properties={"ticket_id": ticket.pk, "number": ticket.number, "subject": ticket.subject, **properties},
    )


def customer_open_tickets_refresh(*, workspace: Workspace, customer_id: int | None) -> None:
    if customer_id is None:
        return
    from customers.services import customer_update_support_signals

    count = Ticket.objects.filter(workspace=workspace, customer_id=customer_id, status__in=UNRESOLVED_STATUSES).count()
    customer_update_support_signals(workspace=workspace, customer_id=customer_id, open_tickets_count=count)


# --- Tickets ------------------------------------------------------------------------------------------------------


def _next_number(workspace: Workspace) -> int:
    return (Ticket.objects.filter(workspace=workspace).aggregate(top=Max("number"))["top"] or 1000) + 1


def tags_normalise(tags: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for tag in tags:
        cleaned = re.sub(r"\s+", "-", tag.strip().lower())[:50]
        if cleaned:
            seen[cleaned] = None
    return list(seen)


@transaction.atomic
def ticket_create(
    *,
    workspace: Workspace,
    subject: str,
    body_html: str = "",
    body_text: str = "",
    customer=None,
    requester_email: str = "",
    requester_name: str = "",
    channel: str = TicketChannel.EMAIL,
    priority: str = TicketPriority.NORMAL,
    category: str = "",
    language: str = "",
    order=None,
    tags: Iterable[str] = (),
    attachments: Sequence[IncomingFile] = (),
    email_message_id: str | None = None,
    created_at: dt.datetime | None = None,
    created_by=None,
    route: bool = True,
) -> Ticket:
    """Open a ticket with the customer's first message, route it, set its SLA due times and put it on the timeline."""
    from support.routing import ticket_route

    subject = (subject or "").strip()[:255] or "(no subject)"
    safe_html = html_sanitise(body_html) if body_html.strip() else text_to_html(body_text)
    if not strip_tags(safe_html).strip() and not attachments:
        raise DomainError("The message is empty.", field="body")
    if channel not in TicketChannel.values:
        raise DomainError(f"Unknown channel {channel!r}.", field="channel")
    if priority not in TicketPriority.values:
        raise DomainError(f"Unknown priority {priority!r}.", field="priority")
    attachments_validate(attachments)
    if order is not None and customer is not None and order.customer_id not in (None, customer.pk):
        raise DomainError("That order belongs to another customer.", field="order")
    now = created_at or timezone.now()
    if customer is not None:
        requester_email = requester_email or customer.email
        requester_name = requester_name or customer.full_name
        language = language or customer.language

    for attempt in range(5):
        try:
            with transaction.atomic():
                ticket = Ticket.objects.create(
                    workspace=workspace,
                    number=_next_number(workspace),
                    subject=subject,
                    channel=channel,
                    priority=priority,
                    category=category.strip()[:60],
                    language=language[:10],
                    customer=customer,
                    requester_email=requester_email.strip().lower(),
                    requester_name=requester_name.strip()[:150],
                    order=order,
                    created_at=now,
                    last_customer_message_at=now,
                )
            break
        except IntegrityError:  # another ticket took the number meanwhile
            if attempt == 4:
                raise
    for name in tags_normalise(tags):
        TicketTag.objects.create(workspace=workspace, ticket=ticket, name=name)
    message = TicketMessage.objects.create(
        workspace=workspace,
        ticket=ticket,
        kind=MessageKind.CUSTOMER,
        author=created_by,
        body_html=safe_html,
        body_text=body_text or html_to_text(safe_html),
        email_message_id=email_message_id,
        created_at=now,
    )
    _attachments_store(workspace=workspace, message=message, files=attachments)

    if route:
        decision = ticket_route(workspace=workspace, ticket=ticket)
        ticket.team = decision.team
        ticket.assignee = decision.assignee
        ticket.assigned_at = now if decision.assignee else None
        ticket.routing_note = decision.note[:200]
        if decision.priority:
            ticket.priority = decision.priority
        if decision.assignee is not None:
            ticket.status = TicketStatus.OPEN
    ticket.first_response_due_at, ticket.resolution_due_at = _due_times(
        workspace=workspace, priority=ticket.priority, start=now
    )
    ticket.save()
    _timeline(workspace=workspace, ticket=ticket, type="ticket_opened", occurred_at=now, channel=channel)
    customer_open_tickets_refresh(workspace=workspace, customer_id=ticket.customer_id)
    return ticket


def _require_rep(*, workspace: Workspace, user) -> Membership:
    membership = Membership.objects.filter(workspace=workspace, user=user).first()
    if membership is None or not role_can(membership.role, Capability.WORK_TICKETS):
        raise DomainError("Only support members can work tickets.")
    return membership


@transaction.atomic
def ticket_reply(
    *,
    workspace: Workspace,
    ticket: Ticket,
    author,
    body: str,
    attachments: Sequence[IncomingFile] = (),
    then_status: str | None = None,
) -> TicketMessage:
    """A public reply: stored, emailed to the requester (after commit), and the first response clock stops."""
    _require_rep(workspace=workspace, user=author)
    if not body.strip():
        raise DomainError("Write a reply before sending.", field="body")
    if not ticket.requester_email:
        raise DomainError("This ticket has no requester email to reply to.", field="body")
    attachments_validate(attachments)
    now = timezone.now()
    message = TicketMessage.objects.create(
        workspace=workspace,
        ticket=ticket,
        kind=MessageKind.REPLY,
        author=author,
        body_html=text_to_html(body),
        body_text=body.strip(),
        email_message_id=make_msgid(domain=_message_id_domain()),
        delivery_status=DeliveryStatus.QUEUED,
        created_at=now,
    )
    _attachments_store(workspace=workspace, message=message, files=attachments)
    fields = ["updated_at"]
    if ticket.first_responded_at is None:
        ticket.first_responded_at = now
        fields.append("first_responded_at")
    if ticket.assignee_id is None:
        ticket.assignee = Membership.objects.filter(workspace=workspace, user=author).first()
        ticket.assigned_at = now
        fields += ["assignee", "assigned_at"]
    ticket.save(update_fields=fields)
    _timeline(workspace=workspace, ticket=ticket, type="ticket_replied", occurred_at=now, direction="outbound")
    status = then_status or (TicketStatus.OPEN if ticket.status == TicketStatus.NEW else None)
    if status and status != ticket.status:
        ticket_status_set(workspace=workspace, ticket=ticket, status=status, actor=author)

    from support.tasks import ticket_message_send

    workspace_id, message_id = workspace.pk, message.pk
    transaction.on_commit(lambda: ticket_message_send.delay(workspace_id, message_id))
    return message


@transaction.atomic
def ticket_note_add(
    *, workspace: Workspace, ticket: Ticket, author, body: str, attachments: Sequence[IncomingFile] = ()
) -> TicketMessage:
    _require_rep(workspace=workspace, user=author)
    if not body.strip():
        raise DomainError("A note cannot be empty.", field="body")
    attachments_validate(attachments)
    message = TicketMessage.objects.create(
        workspace=workspace,
        ticket=ticket,
        kind=MessageKind.NOTE,
        author=author,
        body_html=text_to_html(body),
        body_text=body.strip(),
        created_at=timezone.now(),
    )
    _attachments_store(workspace=workspace, message=message, files=attachments)
    ticket.save(update_fields=["updated_at"])
    return message


@transaction.atomic
def ticket_customer_message_add(
    *,
    workspace: Workspace,
    ticket: Ticket,
    body_html: str = "",
    body_text: str = "",
    email_message_id: str | None = None,
    attachments: Sequence[IncomingFile] = (),
    received_at: dt.datetime | None = None,
) -> TicketMessage:
    """The customer wrote again: the ticket reopens if it was pending or solved."""
    attachments_validate(attachments)
    now = received_at or timezone.now()
    safe_html = html_sanitise(body_html) if body_html.strip() else text_to_html(body_text)
    message = TicketMessage.objects.create(
        workspace=workspace,
        ticket=ticket,
        kind=MessageKind.CUSTOMER,
        body_html=safe_html,
        body_text=body_text or html_to_text(safe_html),
        email_message_id=email_message_id,
        created_at=now,
    )
    _attachments_store(workspace=workspace, message=message, files=attachments)
    ticket.last_customer_message_at = now
    fields = ["last_customer_message_at", "updated_at"]
    if ticket.status in (TicketStatus.PENDING, TicketStatus.SOLVED):
        ticket.status = TicketStatus.OPEN
        ticket.solved_at = None
        fields += ["status", "solved_at"]
    ticket.save(update_fields=fields)
    _timeline(workspace=workspace, ticket=ticket, type="ticket_replied", occurred_at=now, direction="inbound")
    customer_open_tickets_refresh(workspace=workspace, customer_id=ticket.customer_id)
    return message


def _assignable(*, workspace: Workspace, membership: Membership | None) -> Membership | None:
    if membership is None:
        return None
    if membership.workspace_id != workspace.pk or not role_can(membership.role, Capability.WORK_TICKETS):
        raise DomainError(f"{membership.user} cannot be assigned tickets.", field="assignee")
    return membership


@transaction.atomic
def ticket_assign(
    *, workspace: Workspace, ticket: Ticket, assignee: Membership | None, team: Team | None = None, actor=None
) -> Ticket:
    ticket.assignee = _assignable(workspace=workspace, membership=assignee)
    ticket.assigned_at = timezone.now() if assignee else None
    fields = ["assignee", "assigned_at", "updated_at"]
    if team is not None:
        if team.workspace_id != workspace.pk:
            raise DomainError("Unknown team.", field="team")
        ticket.team = team
        fields.append("team")
    if assignee is not None and ticket.status == TicketStatus.NEW:
        ticket.status = TicketStatus.OPEN
        fields.append("status")
    ticket.routing_note = f"assigned by {actor}" if actor else ""
    ticket.save(update_fields=[*fields, "routing_note"])
    return ticket


@transaction.atomic
def ticket_status_set(*, workspace: Workspace, ticket: Ticket, status: str, actor=None) -> Ticket:
    if status not in TicketStatus.values:
        raise DomainError(f"Unknown status {status!r}.", field="status")
    if status == ticket.status:
        return ticket
    now = timezone.now()
    was_resolved = ticket.is_resolved
    ticket.status = status
    fields = ["status", "updated_at"]
    if status == TicketStatus.SOLVED:
        ticket.solved_at = now
        fields.append("solved_at")
    elif status == TicketStatus.CLOSED:
        ticket.closed_at = now
        fields.append("closed_at")
        if ticket.solved_at is None:
            ticket.solved_at = now
            fields.append("solved_at")
    else:
        ticket.solved_at = None
        ticket.closed_at = None
        fields += ["solved_at", "closed_at"]
    ticket.save(update_fields=fields)
    if ticket.is_resolved and not was_resolved:
        _timeline(workspace=workspace, ticket=ticket, type="ticket_solved", occurred_at=now, status=status)
        from support.surveys import survey_schedule_csat

        survey_schedule_csat(workspace=workspace, ticket=ticket)
    customer_open_tickets_refresh(workspace=workspace, customer_id=ticket.customer_id)
    return ticket


@transaction.atomic
def ticket_properties_update(
    *,
    workspace: Workspace,
    ticket: Ticket,
    priority: str | None = None,
    category: str | None = None,
    tags: Iterable[str] | None = None,
    order=None,
    clear_order: bool = False,
) -> Ticket:
    fields = ["updated_at"]
    if priority is not None and priority != ticket.priority:
        if priority not in TicketPriority.values:
            raise DomainError(f"Unknown priority {priority!r}.", field="priority")
        ticket.priority = priority
        # Due times restart from the ticket's creation under the new targets, as if it had always had this priority.
        ticket.first_response_due_at, ticket.resolution_due_at = _due_times(
            workspace=workspace, priority=priority, start=ticket.created_at
        )
        fields += ["priority", "first_response_due_at", "resolution_due_at"]
    if category is not None:
        ticket.category = category.strip()[:60]
        fields.append("category")
    if order is not None:
        if ticket.customer_id and order.customer_id not in (None, ticket.customer_id):
            raise DomainError("That order belongs to another customer.", field="order")
        ticket.order = order
        fields.append("order")
    elif clear_order:
        ticket.order = None
        fields.append("order")
    ticket.save(update_fields=fields)
    if tags is not None:
        wanted = tags_normalise(tags)
        TicketTag.objects.filter(workspace=workspace, ticket=ticket).exclude(name__in=wanted).delete()
        have = set(TicketTag.objects.filter(workspace=workspace, ticket=ticket).values_list("name", flat=True))
        TicketTag.objects.bulk_create(
            [TicketTag(workspace=workspace, ticket=ticket, name=name) for name in wanted if name not in have]
        )
    return ticket


@dataclass(frozen=True, kw_only=True)
class BulkResult:
    changed: int
    skipped: int = 0


@transaction.atomic
def tickets_bulk_update(
    *,
    workspace: Workspace,
    ticket_ids: Iterable[int],
    actor,
    assignee: Membership | None = None,
    unassign: bool = False,
    status: str | None = None,
) -> BulkResult:
    """Assign and/or change status of many tickets; each goes through the single-ticket service (events, surveys)."""
    tickets = list(Ticket.objects.filter(workspace=workspace, pk__in=list(ticket_ids)).select_related("customer"))
    if not tickets:
        raise DomainError("Select at least one ticket.")
    if assignee is not None or unassign:
        _assignable(workspace=workspace, membership=assignee)
    for ticket in tickets:
        if assignee is not None or unassign:
            ticket_assign(workspace=workspace, ticket=ticket, assignee=assignee, actor=actor)
        if status:
            ticket_status_set(workspace=workspace, ticket=ticket, status=status, actor=actor)
    return BulkResult(changed=len(tickets))


# --- Canned replies -----------------------------------------------------------------------------------------------

MERGE_FIELD_RE = re.compile(r"\{\{\s*([a-z_]+)\.([a-z_]+)\s*\}\}")


def canned_reply_render(*, canned: CannedReply, ticket: Ticket, agent) -> str:
    """Fill the fixed list of merge fields; anything else is left as typed. No template engine is involved."""
    customer = ticket.customer
    values = {
        ("customer", "first_name"): (customer.first_name if customer else "") or ticket.requester_name.split(" ")[0],
        ("customer", "last_name"): customer.last_name if customer else "",
        ("customer", "email"): ticket.requester_email,
        ("ticket", "number"): str(ticket.number),
        ("ticket", "subject"): ticket.subject,
        ("order", "number"): ticket.order.number if ticket.order is not None else "",
        ("agent", "name"): getattr(agent, "display_name", "") or "",
        ("workspace", "name"): ticket.workspace.name,
    }

    def replace(match: re.Match) -> str:
        key = (match[1], match[2])
        return values[key] if key in values else match[0]

    return MERGE_FIELD_RE.sub(replace, canned.body)


def canned_reply_save(*, workspace: Workspace, title: str, body: str, canned: CannedReply | None = None) -> CannedReply:
    if not title.strip() or not body.strip():
        raise DomainError("A canned reply needs a title and a body.", field="title")
    canned = canned or CannedReply(workspace=workspace)
    canned.title, canned.body = title.strip()[:100], body.strip()
    canned.save()
    return canned


# --- Teams ----------------------------------------------------------------------------------------------------------


@transaction.atomic
def team_save(*, workspace: Workspace, name: str, member_ids: Iterable[int], team: Team | None = None) -> Team:
    from support.models import TeamMember

    name = name.strip()
    if not name:
        raise DomainError("A team needs a name.", field="name")
    same_name = Team.objects.filter(workspace=workspace, name=name)
    if team is not None:
        same_name = same_name.exclude(pk=team.pk)
    if same_name.exists():
        raise DomainError(f"There is already a team called {name}.", field="name")
    team = team or Team(workspace=workspace)
    team.name = name
    team.save()
    members = list(Membership.objects.filter(workspace=workspace, pk__in=list(member_ids)))
    TeamMember.objects.filter(workspace=workspace, team=team).exclude(membership__in=members).delete()
    have = set(TeamMember.objects.filter(workspace=workspace, team=team).values_list("membership_id", flat=True))
    TeamMember.objects.bulk_create(
        [TeamMember(workspace=workspace, team=team, membership=m) for m in members if m.pk not in have]
    )
    return team


# --- Outgoing email -------------------------------------------------------------------------------------------------


def _message_id_domain() -> str:
    return settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip("> ") or "localhost"


def _from_address(workspace: Workspace) -> str:
    address = settings.DEFAULT_FROM_EMAIL
    if "<" in address:
        address = address.split("<", 1)[1].rstrip(">")
    display = workspace.name.replace('"', "")
    return f'"{display} Support" <{address}>'


def ticket_message_deliver(*, workspace: Workspace, message_id: int) -> bool:
    """Email a public reply. Claimed with a conditional update, so a duplicated task sends it once."""
    claimed = TicketMessage.objects.filter(
        workspace=workspace, pk=message_id, kind=MessageKind.REPLY, delivery_status=DeliveryStatus.QUEUED
    ).update(delivery_status=DeliveryStatus.SENDING)
    if not claimed:
        return False
    message = TicketMessage.objects.select_related("ticket", "author").get(workspace=workspace, pk=message_id)
    ticket = message.ticket
    thread = list(
        TicketMessage.objects.filter(workspace=workspace, ticket=ticket, email_message_id__isnull=False)
        .exclude(pk=message.pk)
        .exclude(kind=MessageKind.NOTE)
        .order_by("created_at", "id")
        .values_list("email_message_id", "kind")
    )
    last_customer = [str(msgid) for msgid, kind in thread if kind == MessageKind.CUSTOMER]
    headers: dict[str, str] = {"Message-ID": message.email_message_id or make_msgid(domain=_message_id_domain())}
    if thread:
        headers["In-Reply-To"] = last_customer[-1] if last_customer else str(thread[-1][0])
        headers["References"] = " ".join(str(msgid) for msgid, _ in thread[-20:])
    reply_to = support_settings_for(workspace=workspace).reply_to_email
    subject = ticket.subject if ticket.subject.lower().startswith("re:") else f"Re: {ticket.subject}"
    agent = message.author.display_name if message.author else workspace.name
    text = f"{message.body_text}\n\n-- \n{agent}, {workspace.name}\nTicket {ticket.reference}"
    html = (
        f'{message.body_html}<p style="color:#6c757d;font-size:13px">{escape(agent)}, {escape(workspace.name)}'
        f"<br>Ticket {escape(ticket.reference)}</p>"
    )
    email = EmailMultiAlternatives(
        subject=f"{subject} {ticket.reference}",
        body=text,
        from_email=_from_address(workspace),
        to=[ticket.requester_email],
        reply_to=[reply_to] if reply_to else None,
        headers=headers,
    )
    email.attach_alternative(html, "text/html")
    for attachment in message.attachments.all():
        with attachment.file.open("rb") as handle:
            email.attach(attachment.filename, handle.read(), attachment.content_type)
    try:
        email.send()
    except Exception as error:  # the backend's errors vary (SMTP, ESP API); record and let the task retry
        TicketMessage.objects.filter(workspace=workspace, pk=message_id).update(
            delivery_status=DeliveryStatus.QUEUED, delivery_error=str(error)[:255]
        )
        raise
    TicketMessage.objects.filter(workspace=workspace, pk=message_id).update(
        delivery_status=DeliveryStatus.SENT, delivery_error=""
    )
    return True


def ticket_message_mark_failed(*, workspace: Workspace, message_id: int, error: str) -> None:
    TicketMessage.objects.filter(workspace=workspace, pk=message_id).update(
        delivery_status=DeliveryStatus.FAILED, delivery_error=error[:255]
    )


# --- Support settings -----------------------------------------------------------------------------------------------


def support_settings_update(
    *,
    workspace: Workspace,
    reply_to_email: str,
    categories: Iterable[str],
    default_team: Team | None,
    is_csat_enabled: bool,
    csat_delay_minutes: int,
    is_nps_enabled: bool,
    nps_delay_days: int,
) -> SupportSettings:
    if default_team is not None and default_team.workspace_id != workspace.pk:
        raise DomainError("Unknown team.", field="default_team")
    config = support_settings_for(workspace=workspace)
    config.reply_to_email = reply_to_email.strip()
    config.categories = list(dict.fromkeys(c.strip()[:60] for c in categories if c.strip()))
    config.default_team = default_team
    config.is_csat_enabled, config.csat_delay_minutes = is_csat_enabled, csat_delay_minutes
    config.is_nps_enabled, config.nps_delay_days = is_nps_enabled, nps_delay_days
    config.save()
    return config


def team_delete(*, workspace: Workspace, team: Team) -> None:
    """Its routing rules go with it; its tickets keep their assignee and lose the team."""
    Team.objects.filter(workspace=workspace, pk=team.pk).delete()


def canned_reply_delete(*, workspace: Workspace, canned: CannedReply) -> None:
    CannedReply.objects.filter(workspace=workspace, pk=canned.pk).delete()
