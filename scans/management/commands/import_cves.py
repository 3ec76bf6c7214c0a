"""``python manage.py import_cves FILE...``: NVD CVE API 2.0 JSON (plain or gzip) into the local catalog.

For sites without a network: files fetched elsewhere (or the API's pages saved as
they come) are read here, and the run is recorded on the NVD feed's state as a sync is.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scans.cve.nvd import NvdFormatError
from scans.cve.nvd_sync import nvd_files_import


class Command(BaseCommand):
    help = "Import NVD CVE API 2.0 JSON files (plain or gzip) into the CVE catalog; unchanged records are skipped."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--batch-size", type=int, default=500, help="Records per batch of queries.")
        parser.add_argument("--list-ids", action="store_true", help="Print every changed CVE id, one a line.")

    def handle(self, *args, **options):
        try:
            counts = nvd_files_import(paths=options["files"], batch_size=options["batch_size"])
        except NvdFormatError as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(f"{error.filename}: {error.strerror}") from None
        line = f"CVE records: {counts.created} created, {counts.updated} updated, {counts.unchanged} unchanged"
        if counts.rejected:
            line += f" ({counts.rejected} rejected by NVD, kept but never matched)"
        self.stdout.write(line)
        if options["list_ids"]:
            for cve_id in sorted(counts.changed_ids):
                self.stdout.write(f"  {cve_id}{' (rejected)' if cve_id in counts.rejected_ids else ''}")
