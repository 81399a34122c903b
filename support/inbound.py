"""Inbound email: parse a message (from anymail's inbound webhook, an mbox/Maildir file or IMAP), then thread it
into its ticket or open a new one.

Threading, in order: a Message-ID we know in In-Reply-To/References; else a ticket reference ``[#1042]`` in the
subject, accepted only from the ticket's own requester (anyone can type a number into a subject); else a new
ticket. Mail already seen (same Message-ID) is ignored, so a replayed webhook or a re-read mailbox adds nothing.
Auto-replies (out-of-office, bounces) are dropped so two robots cannot answer each other forever.
"""

import datetime as dt
import email
import email.policy
import logging
import mailbox
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from crm.exceptions import DomainError
from crm.models import Workspace
from support.models import Attachment, Ticket, TicketChannel, TicketMessage, TicketStatus
from support.services import IncomingFile, ticket_create, ticket_customer_message_add

logger = logging.getLogger(__name__)

REFERENCE_RE = re.compile(r"\[#(\d{1,9})\]")
REPLY_PREFIX_RE = re.compile(r"^((re|fwd?|aw|sv)\s*:\s*)+", re.IGNORECASE)
MESSAGE_ID_RE = re.compile(r"<[^<>\s]+>")
QUOTE_HEADER_RE = re.compile(r"^(On .{5,200} wrote:|-{2,} ?Original Message ?-{2,}|From: .+)$", re.MULTILINE)


@dataclass(frozen=True, kw_only=True)
class InboundEmail:
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_email: str
    from_name: str
    subject: str
    text: str
    html: str
    date: dt.datetime | None
    is_auto_reply: bool = False
    language: str = ""
    attachments: tuple[IncomingFile, ...] = field(default_factory=tuple)


@dataclass(frozen=True, kw_only=True)
class InboundResult:
    ticket: Ticket | None
    message: TicketMessage | None
    is_new_ticket: bool = False
    is_duplicate: bool = False
    is_ignored: bool = False
    reason: str = ""


def _message_ids(value: str | None) -> tuple[str, ...]:
    return tuple(MESSAGE_ID_RE.findall(value or ""))


def _strip_quoted(text: str) -> str:
    """Keep what the customer wrote above the quoted thread (the "On ... wrote:" block and "> " lines)."""
    match = QUOTE_HEADER_RE.search(text)
    if match and match.start() > 0:
        text = text[: match.start()]
    lines = [line for line in text.splitlines() if not line.startswith(">")]
    return "\n".join(lines).strip()


def parse_message(raw: Message | bytes | str) -> InboundEmail:
    """Any message (stdlib, anymail's AnymailInboundMessage, raw bytes) -> InboundEmail."""
    if isinstance(raw, bytes):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
    elif isinstance(raw, str):
        msg = email.message_from_string(raw, policy=email.policy.default)
    else:
        msg = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    from_name, from_email = parseaddr(str(msg.get("From", "")))
    reply_to = getaddresses([str(msg.get("Reply-To", ""))])
    if reply_to and reply_to[0][1]:
        from_name, from_email = reply_to[0][0] or from_name, reply_to[0][1]
    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    text = text_part.get_content() if text_part is not None else ""
    html = html_part.get_content() if html_part is not None else ""
    attachments = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        attachments.append(
            IncomingFile(
                filename=part.get_filename() or "attachment",
                content_type=part.get_content_type(),
                content=payload,
            )
        )
    try:
        date = parsedate_to_datetime(str(msg["Date"])) if msg.get("Date") else None
        if date is not None and date.tzinfo is None:
            date = date.replace(tzinfo=dt.UTC)
    except (TypeError, ValueError):
        date = None
    auto_submitted = str(msg.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(msg.get("Precedence", "")).strip().lower()
    is_auto_reply = (
        auto_submitted not in ("", "no")
        or precedence in ("bulk", "junk", "auto_reply")
        or bool(msg.get("X-Autoreply"))
        or str(msg.get("Content-Type", "")).startswith("multipart/report")
    )
    message_ids = _message_ids(str(msg.get("Message-ID", "")))
    return InboundEmail(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=_message_ids(str(msg.get("In-Reply-To", ""))),
        references=_message_ids(str(msg.get("References", ""))),
        from_email=from_email.strip().lower(),
        from_name=from_name.strip(),
        subject=str(msg.get("Subject", "")).strip(),
        text=text,
        html=html,
        date=date,
        is_auto_reply=is_auto_reply,
        # Content-Language (set by many mail clients) lets routing by language work for new senders too.
        language=str(msg.get("Content-Language", "")).split(",")[0].strip()[:10],
        attachments=tuple(attachments),
    )


def ticket_for_inbound(*, workspace: Workspace, inbound: InboundEmail) -> Ticket | None:
    known_ids = list(reversed(inbound.references)) + list(inbound.in_reply_to)
    if known_ids:
        found = (
            TicketMessage.objects.filter(workspace=workspace, email_message_id__in=known_ids)
            .select_related("ticket")
            .order_by("-created_at")
            .first()
        )
        if found is not None:
            return found.ticket
    match = REFERENCE_RE.search(inbound.subject)
    if match:
        ticket = Ticket.objects.filter(workspace=workspace, number=int(match[1])).first()
        if ticket is not None and inbound.from_email and ticket.requester_email == inbound.from_email:
            return ticket
    return None


def customer_for_email(*, workspace: Workspace, email_address: str, name: str):
    """The customer with this email (the oldest, if duplicates), else a new one created through the customers
    upsert (source "crm")."""
    from customers.models import Customer

    customer = (
        Customer.objects.filter(workspace=workspace, email__iexact=email_address, merged_into=None, erased_at=None)
        .order_by("pk")
        .first()
    )
    if customer is not None:
        return customer
    from customers.records import CustomerRecord
    from customers.services import customer_upsert

    first, _, last = name.partition(" ")
    return customer_upsert(
        workspace=workspace,
        record=CustomerRecord(
            source="crm", external_id=f"email:{email_address}", email=email_address, first_name=first, last_name=last
        ),
    )


def _attachments_within_limits(files: Iterable[IncomingFile]) -> tuple[IncomingFile, ...]:
    """Email attachments over the limits are dropped (with a log line) rather than losing the whole message."""
    kept: list[IncomingFile] = []
    for incoming in files:
        if (
            incoming.content_type.lower() in Attachment.ALLOWED_TYPES
            and len(incoming.content) <= Attachment.MAX_SIZE
            and len(kept) < Attachment.MAX_PER_MESSAGE
        ):
            kept.append(incoming)
        else:
            logger.info("inbound attachment %s (%s) dropped by limits", incoming.filename, incoming.content_type)
    return tuple(kept)


@transaction.atomic
def inbound_email_process(*, workspace: Workspace, inbound: InboundEmail) -> InboundResult:
    if inbound.is_auto_reply:
        return InboundResult(ticket=None, message=None, is_ignored=True, reason="auto-reply")
    if not inbound.from_email or "@" not in inbound.from_email:
        return InboundResult(ticket=None, message=None, is_ignored=True, reason="no sender address")
    if inbound.message_id:
        seen = TicketMessage.objects.filter(workspace=workspace, email_message_id=inbound.message_id).first()
        if seen is not None:
            return InboundResult(ticket=seen.ticket, message=seen, is_duplicate=True, reason="already received")
    received_at = min(inbound.date, timezone.now()) if inbound.date else timezone.now()
    text = _strip_quoted(inbound.text) if inbound.text else ""
    attachments = _attachments_within_limits(inbound.attachments)
    ticket = ticket_for_inbound(workspace=workspace, inbound=inbound)
    if ticket is not None and ticket.status != TicketStatus.CLOSED:
        message = ticket_customer_message_add(
            workspace=workspace,
            ticket=ticket,
            body_html="" if text else inbound.html,
            body_text=text,
            email_message_id=inbound.message_id,
            attachments=attachments,
            received_at=received_at,
        )
        return InboundResult(ticket=ticket, message=message)
    subject = REFERENCE_RE.sub("", inbound.subject).strip() or "(no subject)"
    if ticket is not None:  # a reply to a closed ticket opens a follow-up
        original = REPLY_PREFIX_RE.sub("", subject)
        subject = f"Follow-up to #{ticket.number}: {original}"[:255]
    customer = customer_for_email(workspace=workspace, email_address=inbound.from_email, name=inbound.from_name)
    try:
        new_ticket = ticket_create(
            workspace=workspace,
            subject=subject,
            body_html="" if text else inbound.html,
            body_text=text or ("" if inbound.html else "(empty message)"),
            customer=customer,
            requester_email=inbound.from_email,
            requester_name=inbound.from_name,
            channel=TicketChannel.EMAIL,
            language=inbound.language,
            email_message_id=inbound.message_id,
            attachments=attachments,
            created_at=received_at,
        )
    except DomainError as error:
        return InboundResult(ticket=None, message=None, is_ignored=True, reason=error.message)
    return InboundResult(ticket=new_ticket, message=new_ticket.messages.first(), is_new_ticket=True)


def mailbox_messages(path: Path, *, kind: str = "auto") -> Iterator[tuple[str, Message]]:
    """(key, message) for every message in an mbox file or a Maildir directory."""
    if kind == "auto":
        kind = "maildir" if path.is_dir() else "mbox"
    box: mailbox.Mailbox = (
        mailbox.Maildir(path, create=False) if kind == "maildir" else mailbox.mbox(path, create=False)
    )
    try:
        yield from box.iteritems()
    finally:
        box.close()
