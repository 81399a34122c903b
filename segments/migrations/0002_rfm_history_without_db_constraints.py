"""RFM group history without database foreign-key constraints (see ``RfmGroupChange``): checking a million rows'
keys at commit locks every customer row again (some 7 s of a first scoring at 1M customers)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("customers", "0004_segment_count_indexes"),
        ("segments", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="rfmgroupchange",
            name="customer",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="customers.customer",
            ),
        ),
        migrations.AlterField(
            model_name="rfmgroupchange",
            name="workspace",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="crm.workspace",
            ),
        ),
    ]
