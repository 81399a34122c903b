"""Orders attributed to email: an order placed within N days (default 5) after a click goes to the last message
clicked before it. Runs from the minute tick; idempotent (one Conversion per order)."""

import datetime as dt
from bisect import bisect_right
from collections import defaultdict

from django.utils import timezone

from campaigns.models import Conversion, Message
from campaigns.sending import sending_policy
from crm.models import Workspace
from customers.models import Order, OrderStatus

LOOKBACK = dt.timedelta(days=30)


def conversions_attribute(*, workspace: Workspace, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    window = dt.timedelta(days=sending_policy(workspace=workspace).attribution_days)
    clicks: dict[int, list[tuple[dt.datetime, int]]] = defaultdict(list)
    for customer_id, clicked_at, message_id in (
        Message.objects.filter(workspace=workspace, clicked_at__gte=now - LOOKBACK - window)
        .order_by("clicked_at")
        .values_list("customer_id", "clicked_at", "id")
    ):
        if clicked_at is not None:
            clicks[customer_id].append((clicked_at, message_id))
    if not clicks:
        return 0
    orders = (
        Order.objects.filter(workspace=workspace, customer_id__in=list(clicks), placed_at__gte=now - LOOKBACK)
        .exclude(status=OrderStatus.CANCELLED)
        .exclude(id__in=Conversion.objects.filter(workspace=workspace).values("order_id"))
        .values_list("id", "customer_id", "placed_at", "net_total")
    )
    conversions = []
    for order_id, customer_id, placed_at, net_total in orders:
        history = clicks[customer_id]
        index = bisect_right([c[0] for c in history], placed_at) - 1
        if index >= 0 and placed_at - history[index][0] <= window:
            conversions.append(
                Conversion(
                    workspace=workspace,
                    message_id=history[index][1],
                    order_id=order_id,
                    revenue=net_total,
                    placed_at=placed_at,
                )
            )
    Conversion.objects.bulk_create(conversions, ignore_conflicts=True)
    return len(conversions)
