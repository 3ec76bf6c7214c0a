"""``python manage.py import_kev FILE``: a CISA KEV catalog file (JSON, plain or gzip), for air-gapped sites."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scans.cve.feed_sync import FEED_ERRORS, FeedImport, kev_import


class Command(BaseCommand):
    help = ("Replace the KEV catalog with the one in FILE (known_exploited_vulnerabilities.json, plain or gzip) "
            "and update the findings it lists. A malformed file changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE")

    def handle(self, *args, **options):
        try:
            result = kev_import(source=options["file"])
        except FEED_ERRORS as error:
            raise CommandError(feed_error_text(error)) from None
        self.stdout.write(feed_import_text(result, "KEV entries"))


def feed_error_text(error: Exception) -> str:
    if isinstance(error, OSError):
        return f"{error.filename}: {error.strerror}"
    return str(error)


def feed_import_text(result: FeedImport, what: str) -> str:
    dated = f" (source date {result.source_date:%Y-%m-%d})" if result.source_date else ""
    return (f"{result.records:,} {what}{dated}; {result.removed:,} no longer listed removed; "
            f"{result.findings_updated:,} findings updated.")
