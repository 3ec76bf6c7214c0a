"""Inserting thousands of rows in one go: COPY, behind ``bulk_create``'s options.

The pipeline's one-piece stages insert a row per job or node (3,000 jobs at scan creation,
a CVE job and a score per node) while every worker but one waits for them. Django's
``bulk_create`` prepares each value through the field and the compiler (45,000 calls for
3,000 jobs) and sends the batch as arrays built in Python: about 0.6 s for those jobs.
COPY streams the rows: a temporary table takes them first when conflicts are to be
ignored or turned into updates, then one INSERT ... SELECT applies them.

Like ``bulk_create`` with those options, the objects do not get their primary keys back.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, connections, models, transaction
from django.db.models import Model

# Fields whose Python value COPY can take as it is: psycopg writes str, int, float, bool and None
# in the form PostgreSQL reads for the column, so the field's own preparation (a conversion to
# the same value) is skipped. A subclass may prepare differently: the class must match exactly.
_AS_IS = frozenset({models.CharField, models.TextField, models.BooleanField, models.FloatField,
                    models.IntegerField, models.SmallIntegerField, models.BigIntegerField,
                    models.PositiveIntegerField, models.PositiveSmallIntegerField, models.PositiveBigIntegerField,
                    models.ForeignKey})


def bulk_insert(objects: Sequence[Model], *, ignore_conflicts: bool = False, update_conflicts: bool = False,
                unique_fields: Sequence[str] = (), update_fields: Sequence[str] = ()) -> None:
    """Insert ``objects`` (all of one model), as ``bulk_create`` would with the same options."""
    if not objects:
        return
    model = type(objects[0])
    keyed = {obj.pk is not None for obj in objects}
    if len(keyed) > 1:
        raise ValueError("bulk_insert takes objects that all have a primary key or none that has one")
    meta = model._meta
    # The primary key is left to its sequence, as bulk_create leaves it when the objects have none.
    fields = [f for f in meta.concrete_fields if not (f.primary_key and keyed == {False})]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(meta.db_table)
    # The wrapper itself, not the thread-local proxy: 15 fields x 3,000 rows of proxy lookups add up.
    wrapper = connections[connection.alias]
    as_is = [type(f) in _AS_IS for f in fields]
    rows = ([getattr(obj, f.attname) if plain else f.get_db_prep_save(f.pre_save(obj, add=True), wrapper)
             for f, plain in zip(fields, as_is)] for obj in objects)
    # No savepoint: nothing here needs undoing on its own, and a temporary table that drops on
    # commit needs a transaction around it, the caller's if there is one.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if not (ignore_conflicts or update_conflicts):
            _copy(cursor, table, columns, rows)
            return
        staging = connection.ops.quote_name(f"bulk_{meta.db_table}")
        # The copied columns only, without constraints: rows are checked when they reach the table.
        cursor.execute(f"DROP TABLE IF EXISTS {staging};"
                       f"CREATE TEMP TABLE {staging} ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA")
        _copy(cursor, staging, columns, rows)
        if update_conflicts:
            target = ", ".join(connection.ops.quote_name(meta.get_field(name).column) for name in unique_fields)
            changes = ", ".join(f"{c} = EXCLUDED.{c}" for c in
                                (connection.ops.quote_name(meta.get_field(name).column) for name in update_fields))
            conflict = f"ON CONFLICT ({target}) DO UPDATE SET {changes}"
        else:
            conflict = "ON CONFLICT DO NOTHING"
        cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} {conflict}")


def _copy(cursor, table: str, columns: str, rows) -> None:
    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
