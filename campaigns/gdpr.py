"""The campaigns part of a customer's data export and erasure (registered with customers.gdpr)."""

from typing import Any

from campaigns.models import Message, Suppression
from crm.models import Workspace
from customers.models import Customer


def customer_export(*, workspace: Workspace, customer: Customer) -> dict[str, Any]:
    messages = Message.objects.filter(workspace=workspace, customer=customer).order_by("send_after")
    return {
        "messages": [
            {
                "subject": m.subject,
                "to": m.to_email,
                "status": m.status,
                "campaign": m.campaign.name if m.campaign_id else None,
                "flow": m.flow_step.flow.name if m.flow_step_id else None,
                "sent_at": m.sent_at,
                "opened_at": m.opened_at,
                "clicked_at": m.clicked_at,
                "unsubscribed_at": m.unsubscribed_at,
                "bounced_at": m.bounced_at,
                "complained_at": m.complained_at,
            }
            for m in messages.select_related("campaign", "flow_step__flow")
        ],
        "suppressed": list(
            Suppression.objects.filter(workspace=workspace, email=customer.email.lower())
            .values("reason", "created_at")
            .order_by("created_at")
        )
        if customer.email
        else [],
    }


def customer_erase(*, workspace: Workspace, customer: Customer) -> None:
    """Messages stay (campaign reports keep their counts) but lose the address and the subject line, which can
    carry merge fields; suppression rows for the address go too, since the address itself is personal data."""
    # The profile is anonymised before the erasers run, so the addresses come from the messages themselves.
    messages = Message.objects.filter(workspace=workspace, customer=customer)
    addresses = {address.lower() for address in messages.values_list("to_email", flat=True) if address}
    Suppression.objects.filter(workspace=workspace, email__in=addresses).delete()
    Suppression.objects.filter(workspace=workspace, message__in=messages).delete()
    messages.update(to_email="", subject="", error="")
