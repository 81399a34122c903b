from django import template

from integrations import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def customer_storefront_summary(context, customer):
    return selectors.customer_storefront_summary(workspace=context["request"].workspace, customer=customer)
