"""Set-based generation of a benchmark organization's rows: ``INSERT ... SELECT FROM generate_series``.

A million findings are one statement, not a million ORM saves; the console and reports
benchmarks generate their organizations with these.
"""

from __future__ import annotations

from typing import Any

from django.db import connection


def table(model) -> str:
    """The model's table, quoted for SQL."""
    return connection.ops.quote_name(model._meta.db_table)


def insert_select(cursor, model, exprs: dict[str, str], source: str, params: dict[str, Any]) -> int:
    """INSERT INTO model's table SELECT <exprs> FROM <source>, with named parameters (%(org)s).

    Every column without an expression gets the field's own default, so a column added to the
    model later does not break the generator.
    """
    columns, values, named = [], [], dict(params)
    for field in model._meta.concrete_fields:
        if field.column not in exprs and field.get_internal_type() in ("AutoField", "BigAutoField"):
            continue  # the sequence numbers it
        columns.append(connection.ops.quote_name(field.column))
        if field.column in exprs:
            values.append(exprs[field.column])
        else:
            named[f"default_{field.column}"] = field.get_db_prep_save(field.get_default(), connection)
            values.append(f"%(default_{field.column})s")
    cursor.execute(f"INSERT INTO {table(model)} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {source}", named)
    return cursor.rowcount
