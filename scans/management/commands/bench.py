"""``python manage.py bench scan|ingest|pipeline``: benchmarks that print their figures."""

import importlib
import importlib.util

from django.core.management.base import BaseCommand

from scans.benchmarks import BENCHMARKS, print_summary


class Command(BaseCommand):
    help = "Run a benchmark and print a table, then one JSON line with the figures."

    def add_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="benchmark", required=True)
        for name in BENCHMARKS:
            if importlib.util.find_spec(f"scans.benchmarks.{name}") is None:
                continue  # a benchmark still being written
            module = importlib.import_module(f"scans.benchmarks.{name}")
            sub = subparsers.add_parser(name, help=module.help)
            module.add_arguments(sub)

    def handle(self, *args, **options):
        module = importlib.import_module(f"scans.benchmarks.{options['benchmark']}")
        summary = module.run(options, self.stdout)
        print_summary(self.stdout, summary)
