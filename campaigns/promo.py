"""Unique promo codes: made for each queued message whose template asks for them, and registered with the
workspace's store (Shopify discount codes, WooCommerce coupons) before the message can be sent.

The code itself is derived from the message token (``campaigns.sending.unique_promo_code``), so the email and the
store always agree. ``promo_codes_register`` runs in the send task before the send loop; the loop holds back a
message whose code is missing (deferred a minute, never sent with a code the store does not know). With no store
connected the codes are kept in the CRM only, and the template editor says so.
"""

import datetime as dt
import logging
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.models import EmailTemplate, Message, PromoCode
from crm.models import Workspace

logger = logging.getLogger(__name__)

PENDING = (Message.Status.QUEUED, Message.Status.WAITING_WINNER)


@dataclass(frozen=True, kw_only=True)
class PromoResult:
    registered: int = 0
    local: int = 0


def promo_store(*, workspace: Workspace):
    """The store connection unique codes are registered with: the first connected store, or None."""
    from integrations.models import ConnectionStatus, StoreConnection

    return (
        StoreConnection.objects.filter(workspace=workspace, status=ConnectionStatus.CONNECTED, is_paused=False)
        .order_by("created_at")
        .first()
    )


def messages_needing_codes(*, workspace: Workspace):
    """Pending messages whose template hands out unique codes and that have no code yet."""
    templates = EmailTemplate.objects.filter(workspace=workspace).exclude(unique_promo_prefix="").values("id")
    return (
        Message.objects.filter(workspace=workspace, status__in=PENDING)
        .filter(Q(campaign__template_id__in=templates) | Q(flow_step__template_id__in=templates))
        .exclude(Exists(PromoCode.objects.filter(workspace=workspace, message_id=OuterRef("pk"))))
    )


def promo_codes_register(
    *, workspace: Workspace, now: dt.datetime | None = None, limit: int = 5000, connector=None
) -> PromoResult:
    """Make the missing codes; register them with the store first when one is connected. A store error (raised
    as ``ConnectorError``) leaves those messages without codes: they wait, and the task retries."""
    from campaigns.sending import unique_promo_code
    from integrations.connectors import connector_for

    now = now or timezone.now()
    rows = list(
        messages_needing_codes(workspace=workspace)
        .order_by("id")
        .values_list(
            "id",
            "token",
            "campaign__template__unique_promo_prefix",
            "flow_step__template__unique_promo_prefix",
            "campaign__template__unique_promo_percent",
            "flow_step__template__unique_promo_percent",
            "campaign__template__name",
            "flow_step__template__name",
        )[:limit]
    )
    if not rows:
        return PromoResult()
    by_offer: dict[tuple[int, str], list[tuple[int, str]]] = {}
    for message_id, token, prefix_a, prefix_b, percent_a, percent_b, name_a, name_b in rows:
        prefix = prefix_a or prefix_b
        offer = (percent_a if prefix_a else percent_b, name_a or name_b)
        by_offer.setdefault(offer, []).append((message_id, unique_promo_code(prefix, token)))
    store = promo_store(workspace=workspace)
    registered = local = 0
    for (percent, name), items in by_offer.items():
        codes = [code for _, code in items]
        if store is not None:
            client = connector or connector_for(store)
            try:
                client.create_discount_codes(title=f"{name} ({workspace.name} CRM)", codes=codes, percent=percent)
            finally:
                if connector is None:
                    client.close()
            registered += len(codes)
        else:
            local += len(codes)
        PromoCode.objects.bulk_create(
            [
                PromoCode(
                    workspace=workspace,
                    message_id=message_id,
                    code=code,
                    store_connection_id=store.pk if store else None,
                    registered_at=now if store else None,
                )
                for message_id, code in items
            ],
            ignore_conflicts=True,
        )
    return PromoResult(registered=registered, local=local)
