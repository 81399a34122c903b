"""Events: the (workspace, anonymous_id) index keeps only anonymous events (no customer, an anonymous id), the ones
identifying a visitor looks up; order, email and other customer events no longer write to it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("customers", "0007_bulk_tables_workspace_without_db_constraint"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="event",
            name="event_ws_anonymous",
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                condition=models.Q(("customer__isnull", True), models.Q(("anonymous_id", ""), _negated=True)),
                fields=["workspace", "anonymous_id"],
                name="event_ws_anonymous",
            ),
        ),
    ]
