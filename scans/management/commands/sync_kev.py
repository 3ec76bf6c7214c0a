"""``python manage.py sync_kev``: download the CISA KEV catalog (WATCHPOST_KEV_URL) now, as beat does daily."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scans.cve.feed_sync import FEED_ERRORS, kev_sync
from scans.management.commands.import_kev import feed_error_text, feed_import_text


class Command(BaseCommand):
    help = "Download the CISA KEV catalog from WATCHPOST_KEV_URL, replace the stored one and update the findings."

    def handle(self, *args, **options):
        self.stdout.write(f"Downloading {settings.WATCHPOST_KEV_URL}")
        try:
            result = kev_sync()
        except FEED_ERRORS as error:
            raise CommandError(feed_error_text(error)) from None
        self.stdout.write(feed_import_text(result, "KEV entries"))
