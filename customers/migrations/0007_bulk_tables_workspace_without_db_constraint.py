"""No database foreign-key constraint from orders, order lines and events to their workspace: checking every new
row's workspace at commit (a lock on the same workspace row each time) was about a third of a 100,000-order load's
commit. Only the constraints go; deleting a workspace still cascades through Django."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0001_initial'),
        ('customers', '0006_customer_country_spent_index'),
    ]

    operations = [
        migrations.AlterField(
            model_name='event',
            name='workspace',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='crm.workspace'),
        ),
        migrations.AlterField(
            model_name='order',
            name='workspace',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='crm.workspace'),
        ),
        migrations.AlterField(
            model_name='orderline',
            name='workspace',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='crm.workspace'),
        ),
    ]
