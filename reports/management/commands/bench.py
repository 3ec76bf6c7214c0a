"""``python manage.py bench NAME``: benchmarks that print their figures.

Each benchmark is a module with ``help``, ``add_arguments(parser)`` and
``run(options, out) -> dict``; the command prints its table, then the returned
summary as one JSON line, last, so scripts can read it. The benchmarks live with
what they measure (``scans/benchmarks/``, ``reports/benchmarks.py``); the command
that names them all lives in reports, the top layer, which may import every other.
"""

from django.core.management.base import BaseCommand

from reports import benchmarks as reports_bench
from scans.benchmarks import api as api_bench
from scans.benchmarks import console, cves, ingest, load, pipeline, print_summary, scan

# The sub-commands, imported explicitly (no dynamic imports, so a reader can
# follow every call). To add a benchmark: import its module above and add ONE
# line here, ``"name": module,``.
BENCHMARKS = {
    "scan": scan,
    "ingest": ingest,
    "pipeline": pipeline,
    "console": console,
    "load": load,
    "reports": reports_bench,
    "api": api_bench,
    "cves": cves,
}


class Command(BaseCommand):
    help = "Run a benchmark and print a table, then one JSON line with the figures."

    def add_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="benchmark", required=True)
        for name, module in BENCHMARKS.items():
            # argparse formats help with %, and a help may say "10%".
            module.add_arguments(subparsers.add_parser(name, help=module.help.replace("%", "%%")))

    def handle(self, *args, **options):
        summary = BENCHMARKS[options["benchmark"]].run(options, self.stdout)
        if summary is not None:  # None: the benchmark wrote its own JSON line (a documented key order)
            print_summary(self.stdout, summary)
