"""A resource's fields, declared once: the name each is written under, where it is read from, and how.

A resource the API, the console and the reports show (a node, a finding, a session) lists
its fields in its app's ``fields.py`` as a :class:`Fields`. Everything that writes the
resource takes them from there:

- an API serializer names them (``names``: what drf-spectacular describes) and represents an
  instance with ``represent`` (by hand: on a page of hundreds, DRF's field machinery costs
  more than the database);
- a console table or a report reads its rows with ``rows``: the same names, the stored values;
- a hot list page that PostgreSQL writes as JSON takes its ``json_build_object`` from
  ``json_sql``, so the fast path is not a second definition of the fields (each such list has a
  test holding the two forms to the same JSON).

A field's two forms of its value (``python`` and ``sql``) are written side by side, one pair
per kind of value (:func:`plain`, :func:`time`, :func:`number`, :func:`ip_address`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model, QuerySet

from config.api_conventions import iso, sql_iso

# SQL of a source path ("address", "node__address") -> the SQL of its column ("n.address").
Columns = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Field:
    """One field: its ``name`` wherever it is written, the ``source`` it is read from (a model
    path: ``node__address`` crosses a relation), and its value written as JSON, by Python from
    the stored value (``python``) and by PostgreSQL from the columns (``sql``)."""

    name: str
    source: str
    python: Callable[[Any], Any] | None  # None: the stored value is already its JSON value
    sql: Callable[[Columns], str]
    optional: bool = False  # a reverse one-to-one that may have no row (read as None)


def plain(name: str, source: str = "") -> Field:
    """A value written as it is stored (text, numbers, booleans, JSON columns)."""
    source = source or name
    return Field(name, source, None, lambda column: column(source))


def time(name: str, source: str = "") -> Field:
    """An instant, as the API writes one (``config.api_conventions.iso``), or null."""
    source = source or name
    return Field(name, source, iso, lambda column: sql_iso(column(source)))


def _float(value):
    return float(value) if value is not None else None


def number(name: str, source: str = "") -> Field:
    """A decimal column written as a JSON number (CVSS scores), or null."""
    source = source or name
    return Field(name, source, _float, lambda column: f"{column(source)}::float8")


def ip_address(name: str, source: str = "") -> Field:
    """An IP address column (inet on PostgreSQL) written as its address, without a mask."""
    source = source or name
    return Field(name, source, None, lambda column: f"host({column(source)})")


def computed(name: str, source: str = "", *, python: Callable[[Any], Any] | None,
             sql: Callable[[Columns], str] | None = None) -> Field:
    """A value derived by a rule, in its Python form (applied to ``source``, an attribute of the
    instance, or to the instance itself when there is none) and, for a resource that PostgreSQL
    writes as JSON, its SQL form (``Node.ports_of`` and ``Node.ports_sql``)."""
    return Field(name, source, python, sql or _no_sql(name))


def _no_sql(name: str) -> Callable[[Columns], str]:
    def sql(column: Columns) -> str:
        raise NotImplementedError(f"{name} has no SQL form")

    return sql


def nested(name: str, relation: str, fields: Fields, *, present: str) -> Field:
    """The object across a one-to-one ``relation`` written with ``fields``, or null when there is
    none (``present``: a column of the related row that is null exactly when the row is absent)."""

    def python(related):
        return None if related is None else fields.represent(related)

    def sql(column: Columns) -> str:
        inner = fields.json_sql(lambda source: column(f"{relation}__{source}"))
        return f"CASE WHEN {column(f'{relation}__{present}')} IS NULL THEN NULL ELSE {inner} END"

    return Field(name, relation, python, sql, optional=True)


def _itself(instance):
    return instance


def _getter(field: Field) -> Callable[[Any], Any]:
    if not field.source:
        return _itself
    get = attrgetter(field.source.replace("__", "."))
    if not field.optional:
        return get

    def get_or_none(instance):
        try:
            return get(instance)
        except ObjectDoesNotExist:
            return None

    return get_or_none


class Fields:
    """A resource's fields in the order they are written."""

    def __init__(self, *fields: Field):
        self.fields = fields
        self.names = [f.name for f in fields]
        self.sources = [f.source for f in fields]
        self._by_name = {f.name: f for f in fields}
        self._readers = [(f.name, _getter(f), f.python) for f in fields]

    def __iter__(self):
        return iter(self.fields)

    def __add__(self, other: Fields) -> Fields:
        return Fields(*self.fields, *other.fields)

    def pick(self, *names: str) -> Fields:
        """These fields (in this order): what one representation writes of the resource."""
        return Fields(*(self._by_name[name] for name in names))

    def represent(self, instance: Model) -> dict[str, Any]:
        """The instance as JSON values, under the fields' names."""
        return {name: get(instance) if convert is None else convert(get(instance))
                for name, get, convert in self._readers}

    def values_of(self, instance: Model) -> dict[str, Any]:
        """The instance's stored values under the fields' names: one row as ``rows`` reads it."""
        return {name: get(instance) for name, get, _ in self._readers}

    def rows(self, queryset: QuerySet) -> list[dict[str, Any]]:
        """The queryset's rows as dicts of stored values (no model instances) under the fields' names."""
        pairs = list(zip(self.names, self.sources))
        return [{name: row[source] for name, source in pairs} for row in queryset.values(*self.sources)]

    def json_sql(self, column: Columns) -> str:
        """``json_build_object(...)`` of the fields, for a query whose columns ``column`` names."""
        return "json_build_object(" + ", ".join(f"'{f.name}', {f.sql(column)}" for f in self.fields) + ")"


def columns(model: type[Model], aliases: Mapping[str, str]) -> Columns:
    """Source path -> ``alias.column`` for a query over ``model`` (alias ``aliases[""]``) joined to
    the relations ``aliases`` names (``{"": "f", "node": "n"}``)."""

    def column(source: str) -> str:
        *relations, name = source.split("__")
        current = model
        for relation in relations:
            current = current._meta.get_field(relation).related_model
        return f"{aliases['__'.join(relations)]}.{current._meta.get_field(name).column}"

    return column
