"""OrganizationScore leaves for scans (scans.0015), where scoring writes it: only the state forgets it, the table stays."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("orgs", "0006_retention"),
        ("scans", "0015_organization_score"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="OrganizationScore")],
            database_operations=[],
        ),
    ]
