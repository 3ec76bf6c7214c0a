"""``python manage.py finding_stats_backfill [--days 90] [--org SLUG] [--replace]``: the trend charts' past days."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from orgs.models import Organization
from scans.findings.daily_stats import finding_daily_stats_backfill

MAX_DAYS = 3660


class Command(BaseCommand):
    help = ("Rebuild each organization's daily findings rows (the dashboard's and the report's trend charts) for "
            "past days from its findings' first-seen, fixed and due dates; days already written are kept "
            "unless --replace. Today's row is rewritten from the live figures.")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=90, help="How many days before today (default 90).")
        parser.add_argument("--org", help="Only this organization (slug).")
        parser.add_argument("--replace", action="store_true", help="Overwrite days already written.")

    def handle(self, *args, days=90, org=None, replace=False, **options):
        if not 0 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between 0 and {MAX_DAYS}, not {days}.")
        orgs = Organization.objects.order_by("slug")
        if org:
            orgs = orgs.filter(slug=org)
            if not orgs.exists():
                raise CommandError(f"No organization with slug {org!r}.")
        for each in orgs:
            began = time.perf_counter()
            written = finding_daily_stats_backfill(org=each, days=days, replace=replace)
            self.stdout.write(f"{each.slug}: {written} past day(s) written, today refreshed "
                              f"({time.perf_counter() - began:.1f} s)")
