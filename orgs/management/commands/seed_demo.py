"""``python manage.py seed_demo``: the demo organization, its owner and its loopback nodes. Idempotent."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from nodes.models import Node
from nodes.services import node_create
from orgs.models import Membership, Organization, Role
from orgs.services import organization_create
from scans.catalog import CVE_FIXTURE, cve_catalog_import

DEMO_SLUG = "demo"
DEMO_OWNER = "demo"
DEMO_NETWORK = "127.0.10.0/24"
# The demo scans itself every ten minutes (beat), so the dashboard fills in while `make run` runs.
DEMO_SCHEDULE = "*/10 * * * *"
# The demo lab (scans.lab.demo) serves these loopback hosts while `make run` runs.
DEMO_NODES = {
    "127.0.10.1": "web-frontend",
    "127.0.10.2": "cache",
    "127.0.10.3": "eth-rpc",
    "127.0.10.4": "container-host",
    "127.0.10.5": "bastion",
}


class Command(BaseCommand):
    help = "Create the demo organization, an owner account with a generated password, and loopback demo nodes."

    def add_arguments(self, parser):
        parser.add_argument("--reset-password", action="store_true", help="Generate and print a new owner password.")

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        owner = User.objects.filter(username=DEMO_OWNER).first()
        password = None
        if owner is None or options["reset_password"]:
            password = secrets.token_urlsafe(12)
            if owner is None:
                owner = User.objects.create_user(DEMO_OWNER, email="demo@watchpost.invalid", password=password)
            else:
                owner.set_password(password)
                owner.save(update_fields=["password"])
        org = Organization.objects.filter(slug=DEMO_SLUG).first()
        if org is None:
            org = organization_create(name="Demo", slug=DEMO_SLUG, owner=owner, scope_networks=[DEMO_NETWORK])
        Membership.objects.get_or_create(org=org, user=owner, defaults={"role": Role.OWNER})
        created = 0
        for address, name in DEMO_NODES.items():
            if not Node.objects.filter(org=org, address=address).exists():
                node_create(org=org, address=address, name=name, tags=["demo"])
                created += 1
        self._schedule(org)
        self.stdout.write(f"Demo organization '{org.slug}' ready with {len(DEMO_NODES)} nodes ({created} new), "
                          f"scanned on the schedule '{org.schedule_crontab}'.")
        # A small real CVE catalog so fingerprinting finds something before anyone imports NVD.
        cves = cve_catalog_import(paths=[CVE_FIXTURE])
        self.stdout.write(f"CVE catalog: {cves.created} created, {cves.updated} updated, {cves.unchanged} unchanged.")
        if password:
            self.stdout.write(self.style.SUCCESS(
                f"\n  Log in at http://127.0.0.1:8000/ as  user: {DEMO_OWNER}  password: {password}\n"
                "  (shown once; `python manage.py seed_demo --reset-password` makes a new one)\n"
            ))
        else:
            self.stdout.write(f"Owner '{DEMO_OWNER}' exists; its password was shown when it was made "
                              "(`python manage.py seed_demo --reset-password` makes a new one).")

    def _schedule(self, org):
        """The schedule and the beat rows. The built-in standard profile discovers every demo port
        (its top 1000 grow by the protocol registry's ports: Redis, Docker, JSON-RPC, memcached)."""
        from orgs.schedules import organization_schedule_set, periodic_tasks_setup
        from scans.pipeline import conf

        if not org.schedule_crontab:
            organization_schedule_set(org=org, crontab=DEMO_SCHEDULE, timezone="UTC")
        periodic_tasks_setup(watchdog_seconds=conf.watchdog_interval_seconds())
