"""``python manage.py prune [--dry-run] [--org SLUG]``: apply each organization's retention policy."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from orgs.models import Organization
from scans.pipeline.retention import retention_prune_all


class Command(BaseCommand):
    help = ("Delete raw scanner output and sessions older than each organization's retention policy "
            "(findings, their history and score history are kept).")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would be deleted; delete nothing.")
        parser.add_argument("--org", help="Only this organization (slug).")

    def handle(self, *args, dry_run=False, org=None, **options):
        if org and not Organization.objects.filter(slug=org).exists():
            raise CommandError(f"No organization with slug {org!r}.")
        results = retention_prune_all(dry_run=dry_run, org_slug=org)
        verb = "would delete" if dry_run else "deleted"
        for r in results:
            self.stdout.write(
                f"{r.org}: {verb} the raw output of {r.raw_output_jobs} job(s) finished before "
                f"{r.raw_output_before or 'never (kept forever)'}; {verb} {r.sessions} session(s) "
                f"({r.session_jobs} job(s)) finished before {r.sessions_before or 'never (kept forever)'}"
            )
        if not results:
            self.stdout.write("No organization.")
