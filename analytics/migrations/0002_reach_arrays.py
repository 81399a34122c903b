from django.db import migrations, models


def forget_rollups(apps, schema_editor):
    """The new columns start empty: mark every workspace's rollups as never built so they are rebuilt in full."""
    apps.get_model("analytics", "RollupState").objects.update(last_refreshed_at=None)


class Migration(migrations.Migration):
    dependencies = [("analytics", "0001_initial")]

    operations = [
        migrations.RemoveField(model_name="dailymetrics", name="second_order_gaps"),
        migrations.RemoveField(model_name="dailymetrics", name="later_order_gaps"),
        migrations.AddField(
            model_name="dailymetrics", name="second_order_reach", field=models.JSONField(blank=True, default=list)
        ),
        migrations.AddField(
            model_name="dailymetrics", name="later_order_reach", field=models.JSONField(blank=True, default=list)
        ),
        migrations.RunPython(forget_rollups, migrations.RunPython.noop),
    ]
