import django.db.models.deletion
from django.db import migrations, models


def set_fillfactor(apps, schema_editor):
    # Leave a fifth of each page free so a rescan's last_seen updates stay on their page (HOT updates).
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE scans_finding SET (fillfactor = 80)")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE scans_finding RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("scans", "0003_finding_content_hash")]

    operations = [
        migrations.RemoveIndex(model_name="finding", name="finding_org_last_seen"),
        migrations.AlterField(
            model_name="finding",
            name="first_session",
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="+", to="scans.scansession"),
        ),
        migrations.AlterField(
            model_name="finding",
            name="last_session",
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="+", to="scans.scansession"),
        ),
        migrations.RunPython(set_fillfactor, reset_fillfactor),
    ]
