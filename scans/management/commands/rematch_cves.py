"""``python manage.py rematch_cves (CVE_ID... | --all)``: match the stored services against the catalog again."""

from __future__ import annotations

import re

from django.core.management.base import BaseCommand, CommandError

from scans.cve.rematch import catalog_rematch

CVE_ID = re.compile(r"^CVE-[0-9]{4}-[0-9]{4,}$")


class Command(BaseCommand):
    help = ("Match every organization's stored services again, without rescanning: against the named catalog "
            "records, or with --all against the whole catalog (which also rebuilds the services' product index).")

    def add_arguments(self, parser):
        parser.add_argument("cve_ids", nargs="*", metavar="CVE_ID", help="Records that changed, e.g. CVE-2024-6387.")
        parser.add_argument("--all", action="store_true", help="Every stored service against the whole catalog.")

    def handle(self, *args, **options):
        ids = [cve_id.strip().upper() for cve_id in options["cve_ids"]]
        if options["all"] == bool(ids):
            raise CommandError("Name the CVE ids that changed, or give --all (not both).")
        malformed = [cve_id for cve_id in ids if not CVE_ID.match(cve_id)]
        if malformed:
            raise CommandError(f"Not a CVE id: {', '.join(malformed)} (expected CVE-YYYY-NNNN).")
        counts = catalog_rematch(cve_ids=None if options["all"] else ids)
        self.stdout.write(
            f"Re-matched {counts.services} services on {counts.nodes} nodes against {counts.records} records: "
            f"{counts.new} new, {counts.updated} revalued, {counts.reopened} reopened, {counts.fixed} no longer "
            f"matched, {counts.withdrawn} withdrawn (rejected by NVD), {counts.unchanged} unchanged; "
            f"{counts.rescored} nodes rescored."
        )
