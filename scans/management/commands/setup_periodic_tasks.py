"""``python manage.py setup_periodic_tasks``: the beat rows (watchdog, organizations' schedules). Idempotent."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from orgs.schedules import periodic_tasks_setup
from scans.pipeline import conf


class Command(BaseCommand):
    help = "Create or update the watchdog's beat row and every organization's schedule row; drop orphans."

    def handle(self, *args, **options):
        result = periodic_tasks_setup(watchdog_seconds=conf.watchdog_interval_seconds())
        self.stdout.write(f"Watchdog every {conf.watchdog_interval_seconds():g}s; {result['organizations']} "
                          f"organization schedule(s) synced, {result['removed']} orphan row(s) removed.")
