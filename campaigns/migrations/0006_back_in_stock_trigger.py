from django.db import migrations


def forward(apps, schema_editor):
    """The ready-made back-in-stock flow listened for an event nothing records; the product upsert records
    "product_back_in_stock" (and the flow reads viewers of the product from it, over the last 30 days)."""
    Flow = apps.get_model("campaigns", "Flow")
    Flow.objects.filter(preset="back_in_stock", trigger_event="back_in_stock").update(
        trigger_event="product_back_in_stock", trigger_days=30
    )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0005_remove_flowrun_position"),
    ]

    operations = [
        migrations.RunPython(forward, migrations.RunPython.noop),
    ]
