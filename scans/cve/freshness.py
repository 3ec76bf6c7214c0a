"""How much the local CVE catalog knows, and since when: what a scan says beside its matches.

A scan against an empty catalog matches nothing, and one against a catalog nobody has synced
for days misses what was published since; either must be said, not left to look like a clean
result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from scans.cve.feed_staleness import stale_after
from scans.models import CveRecord, Feed, FeedState


@dataclass(frozen=True)
class CatalogState:
    records: int
    synced_at: datetime | None  # the NVD feed's last success, by sync or by file

    @property
    def empty(self) -> bool:
        return self.records == 0

    def stale(self, now: datetime | None = None) -> bool:
        return self.synced_at is None or (now or timezone.now()) - self.synced_at > stale_after()

    def warning(self, now: datetime | None = None) -> str:
        """What a reader of matches must know of the catalog they came from; empty when current."""
        if self.empty:
            return ("the CVE catalog is empty, so no service can match a CVE: run `manage.py sync_cves` "
                    "(or `import_cves FILE` offline)")
        if self.synced_at is None:
            return (f"the CVE catalog holds {self.records:,} records and was never synced from NVD: matches are "
                    "limited to them (run `manage.py sync_cves`)")
        if self.stale(now):
            days = ((now or timezone.now()) - self.synced_at).days
            return (f"the CVE catalog was last synced {days} days ago: CVEs published since are not matched "
                    "(run `manage.py sync_cves`)")
        return ""

    def as_dict(self) -> dict:
        return {"records": self.records, "synced_at": self.synced_at.isoformat() if self.synced_at else None,
                "stale": self.stale(), "warning": self.warning()}


def catalog_state() -> CatalogState:
    synced_at = FeedState.objects.filter(feed=Feed.NVD).values_list("last_success_at", flat=True).first()
    return CatalogState(records=CveRecord.objects.count(), synced_at=synced_at)
