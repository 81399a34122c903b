from django import template

from segments import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def customer_rfm(context, customer) -> dict:
    """Group history and segment memberships for the customer card (the page's workspace scope is active)."""
    workspace = context.get("workspace") or getattr(context.get("request"), "workspace", None)
    if workspace is None or customer is None:
        return {"history": [], "memberships": []}
    return {
        "history": selectors.rfm_group_history(workspace=workspace, customer_id=customer.pk),
        "memberships": list(
            selectors.segment_memberships_for_customer(workspace=workspace, customer_id=customer.pk)[:20]
        ),
    }
