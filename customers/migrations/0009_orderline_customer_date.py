import django.db.models.deletion
from django.db import migrations, models

# Lines carry a copy of their order's customer, date and cancellation (see OrderLine). Existing lines are filled
# from their orders in one statement (UPDATE ... FROM: PostgreSQL, and SQLite since 3.33).
BACKFILL = """
    UPDATE customers_orderline
    SET customer_id = o.customer_id, placed_at = o.placed_at, is_order_cancelled = (o.status = 'cancelled')
    FROM customers_order o
    WHERE o.id = customers_orderline.order_id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0008_event_anonymous_index_partial"),
    ]

    operations = [
        migrations.AddField(
            model_name="orderline",
            name="customer",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="customers.customer",
            ),
        ),
        migrations.AddField(
            model_name="orderline",
            name="placed_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name="orderline",
            name="is_order_cancelled",
            field=models.BooleanField(default=False),
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="orderline",
            name="placed_at",
            field=models.DateTimeField(),
        ),
        migrations.RemoveIndex(
            model_name="orderline",
            name="orderline_ws_category_order",
        ),
        migrations.AddIndex(
            model_name="orderline",
            index=models.Index(
                condition=models.Q(("is_order_cancelled", False)),
                fields=["workspace", "category", "placed_at"],
                include=("customer", "order"),
                name="orderline_ws_category_bought",
            ),
        ),
    ]
