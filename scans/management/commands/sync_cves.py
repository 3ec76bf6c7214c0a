"""``python manage.py sync_cves``: the CVE catalog brought up to date from the NVD CVE API 2.0.

The first run reads the whole catalog; later runs read what changed since the last
success; an interrupted run resumes at its last finished page (scans.cve.nvd_sync).
On a terminal it draws a progress bar; otherwise it writes one line per page.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scans.cve.nvd_sync import NvdSyncError, SyncProgress, SyncResult, nvd_sync

BAR_WIDTH = 30
IDS_SHOWN = 20


class Command(BaseCommand):
    help = ("Sync the CVE catalog from the NVD CVE API 2.0 (WATCHPOST_NVD_API_URL; NVD_API_KEY optional): "
            "a full sync the first time, then the changes since the last success.")

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true",
                            help="Start over with a full sync (stored records are kept, unchanged ones skipped).")
        parser.add_argument("--list-ids", action="store_true",
                            help=f"Print every changed CVE id, one a line (by default the first {IDS_SHOWN}).")

    def handle(self, *args, **options):
        tty = self.stdout.isatty()
        try:
            result = nvd_sync(full=options["full"], progress=self._bar if tty else self._line)
        except NvdSyncError as error:
            if tty:
                self.stdout.write("")
            raise CommandError(f"{error} (the next run resumes from the last finished page)") from None
        if tty:
            self.stdout.write("")
        self._summary(result, list_ids=options["list_ids"])

    def _bar(self, p: SyncProgress) -> None:
        share = p.done / p.total if p.total else 1.0
        filled = int(share * BAR_WIDTH)
        waited = f", {p.waited_s:.0f}s waiting for NVD's rate limit" if p.waited_s else ""
        self.stdout.write(f"\r{p.window} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%} "
                          f"{p.done:,}/{p.total:,}{waited}\033[K", ending="")  # clear what a longer line left
        self.stdout.flush()

    def _line(self, p: SyncProgress) -> None:
        self.stdout.write(f"nvd: {p.window}: {p.done:,}/{p.total:,} records, page {p.pages}, "
                          f"{p.waited_s:.0f}s waited for the rate limit")

    def _summary(self, result: SyncResult, *, list_ids: bool) -> None:
        c = result.counts
        kind = "full sync" if result.full else "incremental sync"
        self.stdout.write(f"NVD {kind} through {result.synced_through:%Y-%m-%d %H:%M} UTC: {c.created} created, "
                          f"{c.updated} updated, {c.unchanged} unchanged, {c.rejected} rejected; "
                          f"{result.pages} page(s), {result.requests} request(s), {result.retries} retried")
        ids = sorted(result.changed_ids)
        self.stdout.write(f"Changed CVE ids ({len(ids)}):" + ("" if ids else " none"))
        shown = ids if list_ids else ids[:IDS_SHOWN]
        for cve_id in shown:
            self.stdout.write(f"  {cve_id}{' (rejected)' if cve_id in result.rejected_ids else ''}")
        if len(ids) > len(shown):
            self.stdout.write(f"  ... and {len(ids) - len(shown)} more (--list-ids prints them all)")

