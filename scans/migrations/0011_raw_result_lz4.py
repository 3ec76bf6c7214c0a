"""Scanner output compressed with LZ4 instead of pglz, where the server has it.

Every job's raw output (2-10 KB of JSON, 3,000+ per 1,000-node session) is compressed once
when a worker records it and decompressed when normalization reads it; on PostgreSQL 14+
built with LZ4 (Debian's and the official images are) that costs a fraction of pglz's CPU,
for about the same size. Values already stored keep their compression until rewritten;
other databases, and a server without LZ4, are left as they are.
"""

from django.db import migrations

COLUMN = "ALTER TABLE scans_scanjob ALTER COLUMN raw_result SET COMPRESSION {}"


def lz4_available(cursor) -> bool:
    cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    row = cursor.fetchone()
    return bool(row and row[0])


def compress_with(method: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            if lz4_available(cursor):
                cursor.execute(COLUMN.format(method))

    return apply


class Migration(migrations.Migration):

    dependencies = [
        ("scans", "0010_finding_status_severity_id_index"),
    ]

    operations = [
        migrations.RunPython(compress_with("lz4"), compress_with("pglz")),
    ]
