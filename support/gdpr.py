"""The support part of a customer's GDPR export and erasure (registered with customers.gdpr in apps.ready)."""

from crm.models import Workspace
from support.models import Attachment, Survey, Ticket, TicketMessage

ERASED = "[erased]"


def customer_export(*, workspace: Workspace, customer) -> dict:
    tickets = Ticket.objects.filter(workspace=workspace, customer=customer).order_by("created_at")
    messages = TicketMessage.objects.filter(workspace=workspace, ticket__customer=customer).exclude(kind="note")
    by_ticket: dict[int, list] = {}
    for message in messages.order_by("created_at").values("ticket_id", "kind", "body_text", "created_at"):
        by_ticket.setdefault(message["ticket_id"], []).append(
            {
                "from": "you" if message["kind"] == "customer" else "support",
                "text": message["body_text"],
                "at": message["created_at"].isoformat(),
            }
        )
    return {
        "tickets": [
            {
                "number": t.number,
                "subject": t.subject,
                "status": t.status,
                "channel": t.channel,
                "created_at": t.created_at.isoformat(),
                "messages": by_ticket.get(t.pk, []),
            }
            for t in tickets
        ],
        "surveys": [
            {
                "kind": s.kind,
                "score": s.score,
                "comment": s.comment,
                "answered_at": s.answered_at.isoformat() if s.answered_at else None,
            }
            for s in Survey.objects.filter(workspace=workspace, customer=customer, answered_at__isnull=False)
        ],
    }


def customer_erase(*, workspace: Workspace, customer) -> None:
    """Tickets stay (support figures stay right) but lose every word and file that could identify the person."""
    tickets = Ticket.objects.filter(workspace=workspace, customer=customer)
    for attachment in Attachment.objects.filter(workspace=workspace, message__ticket__in=tickets):
        attachment.file.delete(save=False)
    Attachment.objects.filter(workspace=workspace, message__ticket__in=tickets).delete()
    TicketMessage.objects.filter(workspace=workspace, ticket__in=tickets).update(
        body_html=f"<p>{ERASED}</p>", body_text=ERASED
    )
    tickets.update(subject=ERASED, requester_email="", requester_name="")
    Survey.objects.filter(workspace=workspace, customer=customer).update(comment="")
