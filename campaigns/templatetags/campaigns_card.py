from django import template

from campaigns.models import Suppression
from campaigns.selectors import customer_messages

register = template.Library()


@register.simple_tag(takes_context=True)
def customer_email_card(context, customer) -> dict:
    """The data of the customer page's email card (the customer page belongs to customers; this keeps it out)."""
    workspace = customer.workspace
    suppression = Suppression.objects.filter(workspace=workspace, email=(customer.email or "").lower()).first()
    return {
        "messages": customer_messages(workspace=workspace, customer=customer),
        "suppressed": suppression.get_reason_display() if suppression else "",
    }
