from dataclasses import dataclass

from django import template

from support.selectors import customer_tickets
from support.surveys import nps_category

register = template.Library()


@dataclass(frozen=True, kw_only=True)
class CustomerSupportSummary:
    tickets: list
    nps_category: str


@register.simple_tag(takes_context=True)
def customer_support_summary(context: template.Context, customer) -> CustomerSupportSummary:
    """The support card's data for the customer page (which belongs to the customers app)."""
    workspace = context["request"].workspace
    return CustomerSupportSummary(
        tickets=customer_tickets(workspace=workspace, customer_id=customer.pk),
        nps_category=nps_category(customer.last_nps_score),
    )
