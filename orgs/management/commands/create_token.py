"""``python manage.py create_token --org SLUG --name NAME --access read|read_write [--expires-days N]``.

Prints the token's secret once (for scripts and CI); only its SHA-256 is stored. The
creation is audited as made by this command (``changes.via``), since no person is logged in.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from orgs.models import ApiToken, Organization
from orgs.services import api_token_create

VIA = "manage.py create_token"


class Command(BaseCommand):
    help = "Create an API token for an organization and print its secret once."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organization's slug.")
        parser.add_argument("--name", required=True, help="What the token is for, e.g. 'ci-pipeline'.")
        parser.add_argument("--access", required=True, help="read or read_write.")
        parser.add_argument("--expires-days", type=int, default=None,
                            help="Days until the token expires (default: never).")

    def handle(self, *args, **options):
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            known = ", ".join(Organization.objects.order_by("slug").values_list("slug", flat=True)[:20]) or "none"
            raise CommandError(f"No organization with slug {options['org']!r} (known: {known}).")
        access = options["access"]
        if access not in ApiToken.Access.values:
            raise CommandError(f"--access must be one of {', '.join(ApiToken.Access.values)}, not {access!r}.")
        name = options["name"].strip()
        if not name or len(name) > ApiToken._meta.get_field("name").max_length:
            raise CommandError("--name must be 1 to 100 characters.")
        days = options["expires_days"]
        if days is not None and days <= 0:
            raise CommandError("--expires-days must be a positive number of days.")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        token, key = api_token_create(org=org, name=name, access=access, expires_at=expires_at, via=VIA)
        expiry = f"expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "never expires"
        self.stderr.write(f"Created token {token.name!r} ({token.prefix}…) for {org.slug}: {access}, {expiry}.\n"
                          "The secret is shown once; store it now:")
        self.stdout.write(key)
