"""Beat rows follow the pipeline's tasks to ``scans.tasks``: a row keeps its schedule under the new name."""

from django.db import migrations

# Former task name -> the name the task has in scans.tasks.
RENAMED = {
    "interventions.tasks.watchdog_sweep": "scans.tasks.watchdog_sweep",
    "nodes.tasks.discovery_jobs_run": "scans.tasks.discovery_jobs_run",
    "nodes.tasks.node_rescore_task": "scans.tasks.node_rescore",
    "reports.tasks.reporting_stage_run": "scans.tasks.reporting_stage_run",
}


def rename(apps, schema_editor, names):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for old, new in names.items():
        PeriodicTask.objects.filter(task=old).update(task=new)


def forwards(apps, schema_editor):
    rename(apps, schema_editor, RENAMED)


def backwards(apps, schema_editor):
    rename(apps, schema_editor, {new: old for old, new in RENAMED.items()})


class Migration(migrations.Migration):

    dependencies = [
        ("scans", "0013_worker_heartbeat"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
