"""WorkerHeartbeat joins the pipeline: the model moves from interventions, its table and rows stay."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("scans", "0012_job_session_index_in_composites"),
        ("interventions", "0006_worker_heartbeat"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WorkerHeartbeat",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("hostname", models.CharField(max_length=255, unique=True)),
                        ("queues", models.JSONField(blank=True, default=list)),
                        ("pid", models.PositiveIntegerField(blank=True, null=True)),
                        ("concurrency", models.PositiveIntegerField(blank=True, null=True)),
                        ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("seen_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                    ],
                    options={
                        "db_table": "interventions_workerheartbeat",
                        "ordering": ["hostname"],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
