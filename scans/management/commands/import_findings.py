"""``python manage.py import_findings --org SLUG --format FORMAT FILE``: a third-party results file into findings."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from orgs.models import Organization
from scans.findings.imports import findings_import
from scans.importers.base import ImportRejected, load_all


class Command(BaseCommand):
    help = ("Import a results file (nmap XML, Nuclei JSONL, Trivy JSON, SSLyze JSON, OpenVAS XML or CSV, SARIF) into an "
            "organization's findings. A refused file changes nothing and exits non-zero.")

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--org", required=True, metavar="SLUG", help="Organization slug.")
        parser.add_argument("--format", required=True, dest="fmt", choices=sorted(load_all()),
                            help="Importer that reads the file.")
        parser.add_argument("--node", metavar="ADDRESS", help="Node for findings that name no host (SARIF, images).")
        parser.add_argument("--strict", action="store_true",
                            help="Refuse the whole file when one record names no target (default: skip and report it).")

    def handle(self, *args, **options):
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"no organization with slug {options['org']!r}")
        try:
            report = findings_import(org=org, fmt=options["fmt"], path=options["file"], node_address=options["node"],
                                     strict=options["strict"])
        except ImportRejected as rejected:
            raise CommandError(f"import rejected: {rejected.message}") from None
        counts = report.counts
        self.stdout.write(
            f"Imported {report.filename} ({report.fmt}) into {org.slug}: {report.findings} findings read, "
            f"{report.nodes} nodes ({report.nodes_created} new), session {report.session.pk}."
        )
        self.stdout.write(
            f"new {counts.new}  updated {counts.updated}  reopened {counts.reopened}  fixed {counts.fixed}  "
            f"unchanged {counts.unchanged}"
        )
        if report.skipped:
            self.stdout.write(self.style.WARNING(
                f"skipped {report.skipped} record(s) that name no target (--node places them, --strict refuses "
                f"the file instead): {'; '.join(report.skipped_reasons)}"
            ))
