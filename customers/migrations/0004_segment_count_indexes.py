"""Indexes that let segment counts read indexes alone (index-only scans) instead of visiting table rows:

- Customer: (workspace, rfm_group, total_spent, erased_at) over live (not merged) customers replaces
  (workspace, rfm_group); it still serves every RFM-group filter, and "At risk AND spent over 500" counts from it.
- Order: recent orders that count (not cancelled) by placed_at, with customer and id, for "bought ... in the last
  N days" rules.
- OrderLine: (workspace, product/category, order) replace (workspace, product/category), so a rule finds the orders
  of a product or category without reading the lines.

Written by hand with only these operations (customers' own migrations stay theirs).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("customers", "0003_customer_recent_order_index")]

    operations = [
        migrations.RemoveIndex(model_name="customer", name="customer_ws_rfm_group"),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                condition=models.Q(merged_into__isnull=True),
                fields=["workspace", "rfm_group", "total_spent", "erased_at"],
                name="customer_ws_rfm_live",
            ),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=~models.Q(status="cancelled"),
                fields=["workspace", "placed_at", "customer", "id"],
                name="order_ws_placed_live",
            ),
        ),
        migrations.RemoveIndex(model_name="orderline", name="orderline_ws_product"),
        migrations.AddIndex(
            model_name="orderline",
            index=models.Index(fields=["workspace", "product", "order"], name="orderline_ws_product_order"),
        ),
        migrations.RemoveIndex(model_name="orderline", name="orderline_ws_category"),
        migrations.AddIndex(
            model_name="orderline",
            index=models.Index(fields=["workspace", "category", "order"], name="orderline_ws_category_order"),
        ),
    ]
