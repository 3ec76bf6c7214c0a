"""``python manage.py sync_epss``: download the day's EPSS scores (WATCHPOST_EPSS_URL) now, as beat does daily."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scans.cve.feed_sync import FEED_ERRORS, epss_sync
from scans.management.commands.import_kev import feed_error_text, feed_import_text


class Command(BaseCommand):
    help = "Download the EPSS scores from WATCHPOST_EPSS_URL, replace the stored ones and update the findings."

    def handle(self, *args, **options):
        self.stdout.write(f"Downloading {settings.WATCHPOST_EPSS_URL}")
        try:
            result = epss_sync()
        except FEED_ERRORS as error:
            raise CommandError(feed_error_text(error)) from None
        self.stdout.write(feed_import_text(result, "EPSS scores"))
