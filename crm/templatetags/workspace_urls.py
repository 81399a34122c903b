from typing import Any

from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def wsurl(context: template.Context, view_name: str, *args: Any, **kwargs: Any) -> str:
    """``{% wsurl 'customers:detail' customer_id=c.id %}``: reverse a workspace URL for the current workspace."""
    workspace = context["request"].workspace
    return reverse(view_name, kwargs={"workspace_slug": workspace.slug, **kwargs}, args=args or None)


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    try:
        return mapping[key]
    except (KeyError, IndexError, TypeError):
        return None
