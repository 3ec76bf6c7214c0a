"""``python manage.py import_cves FILE...``: NVD CVE API 2.0 JSON (plain or gzip) into the local catalog."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scans.cve.catalog import cve_catalog_import
from scans.cve.nvd import NvdFormatError


class Command(BaseCommand):
    help = "Import NVD CVE API 2.0 JSON files (plain or gzip) into the CVE catalog; unchanged records are skipped."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--batch-size", type=int, default=500, help="Records per batch of queries.")

    def handle(self, *args, **options):
        try:
            counts = cve_catalog_import(paths=options["files"], batch_size=options["batch_size"])
        except NvdFormatError as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(f"{error.filename}: {error.strerror}") from None
        line = f"CVE records: {counts.created} created, {counts.updated} updated, {counts.unchanged} unchanged"
        if counts.rejected:
            line += f" ({counts.rejected} rejected by NVD, kept but never matched)"
        self.stdout.write(line)
