"""OrganizationScore joins its writer, scoring: the model moves from orgs, its table and rows stay."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("scans", "0014_beat_rows_follow_task_names"),
        ("orgs", "0006_retention"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="OrganizationScore",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("score", models.PositiveSmallIntegerField()),
                        ("grade", models.CharField(max_length=1)),
                        ("node_count", models.PositiveIntegerField(default=0)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("org", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="scores",
                                                  to="orgs.organization")),
                        ("session", models.ForeignKey(blank=True, null=True,
                                                      on_delete=django.db.models.deletion.SET_NULL,
                                                      related_name="+", to="scans.scansession")),
                    ],
                    options={
                        "db_table": "orgs_organizationscore",
                        "ordering": ["-created_at"],
                        "indexes": [models.Index(fields=["org", "-created_at"], name="orgscore_org_created")],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
