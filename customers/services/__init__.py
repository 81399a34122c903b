"""Every write to customer data. Ingestion paths (connectors, webhooks, CSV, tracking, seed_demo) build canonical
records (``customers.records``) and call the idempotent bulk upserts here, keyed by (workspace, source, external_id).

Idempotency: a record whose ``updated_at`` is not newer than the stored ``source_updated_at`` is skipped, so replays,
retries and overlapping syncs change nothing, and a stale update never overwrites newer data. Existing rows are
locked (SELECT ... FOR UPDATE on PostgreSQL) before the comparison, so two writers of the same keys serialise.
"""

from customers.services._common import BATCH_SIZE
from customers.services.ingestion import (
    anonymous_events_identify,
    carts_bulk_upsert,
    carts_mark_abandoned,
    customer_upsert,
    customers_bulk_upsert,
    event_record,
    events_bulk_record,
    product_upsert,
    products_bulk_upsert,
)
from customers.services.orders import order_net_total, orders_bulk_upsert
from customers.services.profile import (
    customer_email_unsubscribe,
    customer_set_consent,
    customer_update_profile,
    customer_update_support_signals,
    customers_add_tag,
    customers_remove_tag,
    note_create,
    note_update,
)
from customers.services.scores import customers_set_scores
from customers.services.stats import customer_stats_refresh

__all__ = [
    "BATCH_SIZE",
    "anonymous_events_identify",
    "carts_bulk_upsert",
    "carts_mark_abandoned",
    "customer_email_unsubscribe",
    "customer_set_consent",
    "customer_stats_refresh",
    "customer_update_profile",
    "customer_update_support_signals",
    "customer_upsert",
    "customers_add_tag",
    "customers_bulk_upsert",
    "customers_remove_tag",
    "customers_set_scores",
    "event_record",
    "events_bulk_record",
    "note_create",
    "note_update",
    "order_net_total",
    "orders_bulk_upsert",
    "product_upsert",
    "products_bulk_upsert",
]
