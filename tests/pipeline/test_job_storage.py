"""How job rows are stored: every claim, record and normalization writes them, so each write should cost little."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_scanner_output_is_compressed_with_lz4_where_the_server_has_it_and_left_to_the_default_elsewhere():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        lz4 = cursor.fetchone()[0]
        cursor.execute("SELECT attcompression FROM pg_attribute "
                       "WHERE attrelid = 'scans_scanjob'::regclass AND attname = 'raw_result'")

        # "l": LZ4; "" (no setting of its own): the server's default_toast_compression, pglz without LZ4.
        assert cursor.fetchone()[0] == ("l" if lz4 else "")


def test_a_job_row_has_no_index_that_another_already_covers():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'scans_scanjob'")
        definitions = [row[0] for row in cursor.fetchall()]

    # session_id alone is the leading column of the unique (session, node, scanner) and of (session, status);
    # the one index on it alone holds only the jobs waiting for admission.
    assert not [d for d in definitions if d.endswith("(session_id)")]
    assert [d.split(" WHERE ")[1] for d in definitions if "(session_id) WHERE" in d] == [
        "(((status)::text = 'queued'::text) AND ((task_id)::text = ''::text))"]
    assert len(definitions) == 6
