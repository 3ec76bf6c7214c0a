"""``python manage.py sync_epss``: download the day's EPSS scores (WATCHPOST_EPSS_URL) now, as beat does daily."""

from scans.cve.feed_sync import epss_sync
from scans.management.feed_commands import FeedCommand


class Command(FeedCommand):
    help = "Download the EPSS scores from WATCHPOST_EPSS_URL, replace the stored ones and update the findings."
    what = "EPSS scores"
    url_setting = "WATCHPOST_EPSS_URL"
    run = staticmethod(epss_sync)
