"""``python manage.py seed_demo``: the demo organization, its owner and its loopback nodes. Idempotent.

Besides the nodes the demo lab serves, the demo holds one node nothing answers on (its
first session opens a "node unreachable" intervention), a pending invitation and an API
token row, so every console page has something real to show.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from nodes.models import Node
from nodes.services import node_create
from orgs.models import ApiToken, Invitation, Membership, Organization, Role
from orgs.schedules import organization_schedule_set, periodic_tasks_setup
from orgs.services import api_token_create, invitation_create, organization_create
from scans.cve.catalog import CVE_FIXTURE, cve_catalog_import
from scans.pipeline import conf

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
    # Not served by the demo lab: the first session finds it silent and opens an intervention.
    "127.0.10.6": "legacy-db",
}
DEMO_INVITEE = "teammate@watchpost.invalid"
DEMO_TOKEN = "demo-ci"
BASE_URL = "http://127.0.0.1:8000"


class Command(BaseCommand):
    help = "Create the demo organization, an owner account with a generated password, and loopback demo nodes."

    def add_arguments(self, parser):
        parser.add_argument("--reset-password", action="store_true", help="Generate and print a new owner password.")
        parser.add_argument("--login-file", default="",
                            help="also keep a new owner password in this file, readable by its owner only, for "
                                 "`demo_lab --announce-login` to print once everything is up (make run)")

    def handle(self, *args, **options):
        with transaction.atomic():
            password = self._seed(options)
        # After the commit, so the credentials come last, below the invitation e-mail the
        # console backend prints on commit.
        if password and options["login_file"]:
            login_file_write(Path(options["login_file"]), DEMO_OWNER, password)
        if password:
            self.stdout.write(self.style.SUCCESS(
                f"\n  Log in at {BASE_URL}/ as  user: {DEMO_OWNER}  password: {password}\n"
                "  (shown once; `python manage.py seed_demo --reset-password` makes a new one)"
            ))
        else:
            self.stdout.write(f"Owner '{DEMO_OWNER}' exists; its password was shown when it was made "
                              "(`python manage.py seed_demo --reset-password` makes a new one).")
        self.stdout.write(f"  Django admin: {BASE_URL}/admin/ - create an account for it with "
                          "`python manage.py createsuperuser` (the demo owner is not staff).\n")

    def _seed(self, options) -> str | None:
        """Everything, in one transaction; returns the new owner password, if one was made."""
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
        membership, _ = Membership.objects.get_or_create(org=org, user=owner, defaults={"role": Role.OWNER})
        created = 0
        for address, name in DEMO_NODES.items():
            if not Node.objects.filter(org=org, address=address).exists():
                node_create(org=org, address=address, name=name, tags=["demo"])
                created += 1
        self._schedule(org)
        self._team(org, membership)
        self.stdout.write(f"Demo organization '{org.slug}' ready with {len(DEMO_NODES)} nodes ({created} new), "
                          f"scanned on the schedule '{org.schedule_crontab}'.")
        # A small real CVE catalog so fingerprinting finds something before anyone imports NVD.
        cves = cve_catalog_import(paths=[CVE_FIXTURE])
        self.stdout.write(f"CVE catalog: {cves.created} created, {cves.updated} updated, {cves.unchanged} unchanged.")
        return password

    def _team(self, org, membership):
        """A pending invitation (its e-mail goes to the console backend) and a token row for the lists."""
        if not Invitation.objects.pending().filter(org=org, email=DEMO_INVITEE).exists():
            invitation_create(org=org, email=DEMO_INVITEE, role=Role.ANALYST, by=membership,
                              accept_url=f"{BASE_URL}/invitations/{{token}}/")
            self.stdout.write(f"Invited {DEMO_INVITEE} as analyst (pending; revocable on the members page).")
        if not ApiToken.objects.filter(org=org, name=DEMO_TOKEN).exists():
            # The secret is not printed: the row only shows what the token list looks like.
            api_token_create(org=org, name=DEMO_TOKEN, access=ApiToken.Access.READ, by=membership.user)
            self.stdout.write(f"API token row '{DEMO_TOKEN}' created (read only; make your own under Settings).")

    def _schedule(self, org):
        """The schedule and the beat rows. The built-in standard profile discovers every demo port
        (its top 1000 grow by the protocol registry's ports: Redis, Docker, JSON-RPC, memcached)."""
        if not org.schedule_crontab:
            organization_schedule_set(org=org, crontab=DEMO_SCHEDULE, timezone="UTC")
        periodic_tasks_setup(watchdog_seconds=conf.watchdog_interval_seconds())


def login_file_write(path: Path, user: str, password: str) -> None:
    """The demo login, for the owner of the file alone (created with mode 0600, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(f"{user}\n{password}\n")


def login_file_read(path: Path) -> tuple[str, str] | None:
    try:
        user, password = path.read_text().split("\n")[:2]
    except (OSError, ValueError):
        return None
    return (user, password) if user and password else None
