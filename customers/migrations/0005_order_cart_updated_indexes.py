"""Indexes for the analytics minute tick and leaner indexes for the tables bulk loads write.

- Order and Cart: (workspace, updated_at), for the minute tick's "changed since the last refresh" reads.
- Event: (workspace, id), for the cursors that read a workspace's newest events (flows, segment refreshes).
- Order, OrderLine, Event, Cart: no index on workspace_id alone; every index of these tables leads with the
  workspace, so that one only cost a write per row. Only the index goes (the foreign key constraint stays as it
  is, not dropped and re-validated).
"""

import django.db.models.deletion
from django.db import migrations, models


def _workspace_key_without_index(model_name: str, index: str):
    return migrations.SeparateDatabaseAndState(
        state_operations=[
            migrations.AlterField(
                model_name=model_name,
                name="workspace",
                field=models.ForeignKey(
                    db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="crm.workspace"
                ),
            )
        ],
        database_operations=[
            migrations.RunSQL(
                f'DROP INDEX IF EXISTS "{index}"',
                reverse_sql=f'CREATE INDEX IF NOT EXISTS "{index}" ON "customers_{model_name}" ("workspace_id")',
            )
        ],
    )


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("customers", "0004_segment_count_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["workspace", "updated_at"], name="order_ws_updated"),
        ),
        migrations.AddIndex(
            model_name="cart",
            index=models.Index(fields=["workspace", "updated_at"], name="cart_ws_updated"),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(fields=["workspace", "id"], name="event_ws_id"),
        ),
        _workspace_key_without_index("order", "customers_order_workspace_id_5c111ae4"),
        _workspace_key_without_index("orderline", "customers_orderline_workspace_id_f20dab2d"),
        _workspace_key_without_index("event", "customers_event_workspace_id_d9458031"),
        _workspace_key_without_index("cart", "customers_cart_workspace_id_a992cf7a"),
    ]
