"""``python manage.py import_kev FILE``: a CISA KEV catalog file (JSON, plain or gzip), for air-gapped sites."""

from scans.cve.feed_sync import kev_import
from scans.management.feed_commands import FeedCommand


class Command(FeedCommand):
    help = ("Replace the KEV catalog with the one in FILE (known_exploited_vulnerabilities.json, plain or gzip) "
            "and update the findings it lists. A malformed file changes nothing.")
    what = "KEV entries"
    run = staticmethod(kev_import)
