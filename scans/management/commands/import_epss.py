"""``python manage.py import_epss FILE``: FIRST EPSS scores (CSV, plain or gzip) saved by hand, for air-gapped sites."""

from scans.cve.feed_sync import epss_import
from scans.management.feed_commands import FeedCommand


class Command(FeedCommand):
    help = ("Replace the EPSS scores with those in FILE (epss_scores-YYYY-MM-DD.csv.gz, plain or gzip) and update "
            "the findings they score. A malformed file changes nothing.")
    what = "EPSS scores"
    run = staticmethod(epss_import)
