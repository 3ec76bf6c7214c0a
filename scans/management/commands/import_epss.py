"""``python manage.py import_epss FILE``: FIRST EPSS scores (CSV, plain or gzip) saved by hand, for air-gapped sites."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scans.cve.feed_sync import FEED_ERRORS, epss_import
from scans.management.commands.import_kev import feed_error_text, feed_import_text


class Command(BaseCommand):
    help = ("Replace the EPSS scores with those in FILE (epss_scores-YYYY-MM-DD.csv.gz, plain or gzip) and update "
            "the findings they score. A malformed file changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE")

    def handle(self, *args, **options):
        try:
            result = epss_import(source=options["file"])
        except FEED_ERRORS as error:
            raise CommandError(feed_error_text(error)) from None
        self.stdout.write(feed_import_text(result, "EPSS scores"))
