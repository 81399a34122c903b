"""A pg_trgm GIN index on the customer search text, so "contains" search stays fast at 100,000+ customers.

PostgreSQL only: on SQLite (the zero-set-up demo) the operation does nothing and search is a plain scan. The
indexed expression must stay identical to ``customers.selectors.SEARCH_EXPRESSION``.
"""

from django.db import migrations

SEARCH_EXPRESSION = "lower(first_name || ' ' || last_name || ' ' || email || ' ' || phone)"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS customer_search_trgm ON customers_customer USING gin (({SEARCH_EXPRESSION}) gin_trgm_ops)"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS customer_search_trgm")


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index)]
