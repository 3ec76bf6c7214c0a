"""The findings lists sorted by priority walk an index, as they do by severity."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("scans", "0022_cverecord_rejected_index"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="finding",
            index=models.Index(fields=["org", "priority", "-id"], name="finding_org_priority_id"),
        ),
    ]
