"""An index for the customer list's default sort: most recent order first, customers who never ordered last;
partial on live (not merged) customers, so it also serves the page count as an index-only scan.

PostgreSQL only (SQLite cannot declare NULLS LAST in an index), which is why it is raw SQL here rather than a
``Meta.indexes`` entry: the model state stays identical on both databases.
"""

from django.db import migrations


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS customer_ws_recent_order "
        "ON customers_customer (workspace_id, last_order_at DESC NULLS LAST, id DESC) WHERE merged_into_id IS NULL"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS customer_ws_recent_order")


class Migration(migrations.Migration):
    dependencies = [("customers", "0002_customer_search_trigram")]

    operations = [migrations.RunPython(create_index, drop_index)]
