"""WorkerHeartbeat leaves for the pipeline (scans.0013): only the state forgets it, the table stays."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("interventions", "0006_worker_heartbeat"),
        ("scans", "0013_worker_heartbeat"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="WorkerHeartbeat")],
            database_operations=[],
        ),
    ]
