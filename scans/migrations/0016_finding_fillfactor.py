"""Findings pages are filled to half, so that a rescan's rewrite of a row stays on its page.

Every rescan or import that sees a finding again rewrites its row (last seen, last session, times
seen). PostgreSQL writes the new version of a row beside the old one, on the same page, only
when the page has room for it: then no index is touched (a heap-only tuple). On full pages
every such update goes to another page and adds an entry to each of the table's indexes. Half
of each page left free holds one new version of every row; the old ones are pruned from the
page once no transaction can see them, which frees the room for the next rescan. Applies to
pages written from now on; existing pages keep their fill until they are rewritten.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("scans", "0015_organization_score"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE scans_finding SET (fillfactor = 50)",
            reverse_sql="ALTER TABLE scans_finding RESET (fillfactor)",
        ),
    ]
