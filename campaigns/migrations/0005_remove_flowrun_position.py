from django.db import migrations


class Migration(migrations.Migration):
    """Separate from 0004: PostgreSQL refuses to alter a table with pending deferred FK checks from its data step."""

    dependencies = [
        ('campaigns', '0004_flow_split_branches'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='flowrun',
            name='position',
        ),
    ]
