"""What the four exploitation-feed commands share: run one service, say what it did or why it refused.

``sync_kev`` / ``sync_epss`` download (as beat does daily); ``import_kev FILE`` / ``import_epss FILE``
read a file saved by hand, for air-gapped sites. Each is a subclass naming its service.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scans.cve.feed_sync import FEED_ERRORS, FeedImport


class FeedCommand(BaseCommand):
    what = ""  # "KEV entries"
    url_setting = ""  # a sync's source, printed before it downloads; empty for an import of a file
    run: Callable[..., FeedImport]

    def add_arguments(self, parser):
        if not self.url_setting:
            parser.add_argument("file", metavar="FILE")

    def handle(self, *args, **options):
        if self.url_setting:
            self.stdout.write(f"Downloading {getattr(settings, self.url_setting)}")
        try:
            result = type(self).run() if self.url_setting else type(self).run(source=options["file"])
        except FEED_ERRORS as error:
            raise CommandError(f"{error.filename}: {error.strerror}" if isinstance(error, OSError) else str(error)) \
                from None
        dated = f" (source date {result.source_date:%Y-%m-%d})" if result.source_date else ""
        self.stdout.write(f"{result.records:,} {self.what}{dated}; {result.removed:,} no longer listed removed; "
                          f"{result.findings_updated:,} findings updated.")
