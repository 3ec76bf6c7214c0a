"""``python manage.py sync_kev``: download the CISA KEV catalog (WATCHPOST_KEV_URL) now, as beat does daily."""

from scans.cve.feed_sync import kev_sync
from scans.management.feed_commands import FeedCommand


class Command(FeedCommand):
    help = "Download the CISA KEV catalog from WATCHPOST_KEV_URL, replace the stored one and update the findings."
    what = "KEV entries"
    url_setting = "WATCHPOST_KEV_URL"
    run = staticmethod(kev_sync)
