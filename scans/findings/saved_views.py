"""Writes of saved views: named filters of the findings list, personal or shared with the organization.

A filter is checked when it is saved (``scans.selectors.finding_filter_problems``): one that does
not parse is refused with what is wrong, and nothing is written. Who may change which view is the
access helpers' rule (``scans.access.writable_saved_view_for``); these functions write and audit.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import QueryDict
from django.utils import timezone

from orgs.audit import audit_record
from scans.models import SavedView
from scans.selectors import finding_filter_problems

NAME_MAX = 100
QUERY_MAX = 2000


def saved_view_query_clean(query: str) -> str:
    """The filter as it is stored: a query string without a leading ``?`` or a page; refused when it does not parse."""
    query = (query or "").strip().lstrip("?")
    if len(query) > QUERY_MAX:
        raise ValidationError(f"The filter is {len(query):,} characters long; at most {QUERY_MAX:,}.")
    pairs = [(key, value) for key, value in parse_qsl(query, keep_blank_values=True) if key != "page"]
    problems = finding_filter_problems(QueryDict(urlencode(pairs)))
    if problems:
        raise ValidationError(["This filter does not parse, so it was not saved: " + " ".join(problems)])
    return urlencode(pairs)


def _name_clean(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the view a name.")
    if len(name) > NAME_MAX:
        raise ValidationError(f"A view's name is at most {NAME_MAX} characters.")
    return name


@transaction.atomic
def saved_view_create(*, org, name: str, query: str, shared: bool, by=None, token=None,
                      ip: str | None = None) -> SavedView:
    """Save ``query`` (the findings list's query string) as ``name``, for its author alone or the organization."""
    owner = by if by is not None and by.is_authenticated else None
    if owner is None and token is None:
        raise ValidationError("A saved view belongs to a member or a token.")
    view = SavedView.objects.create(org=org, name=_name_clean(name), query=saved_view_query_clean(query),
                                    shared=bool(shared), owner=owner, token=token)
    audit_record(org=org, verb="saved_view.created", target=view, actor=by, token=token, ip=ip,
                 changes={"name": view.name, "query": view.query, "shared": view.shared})
    return view


@transaction.atomic
def saved_view_update(*, view: SavedView, name: str | None = None, query: str | None = None,
                      shared: bool | None = None, by=None, token=None, ip: str | None = None) -> SavedView:
    """Rename a view, change its filter or whether it is shared; what is not given stays."""
    view = SavedView.objects.select_for_update().get(pk=view.pk)
    before = {"name": view.name, "query": view.query, "shared": view.shared}
    if name is not None:
        view.name = _name_clean(name)
    if query is not None:
        view.query = saved_view_query_clean(query)
    if shared is not None:
        view.shared = bool(shared)
    view.updated_at = timezone.now()
    view.save(update_fields=["name", "query", "shared", "updated_at"])
    after = {"name": view.name, "query": view.query, "shared": view.shared}
    audit_record(org=view.org, verb="saved_view.updated", target=view, actor=by, token=token, ip=ip,
                 changes={key: [before[key], after[key]] for key in before if before[key] != after[key]})
    return view


@transaction.atomic
def saved_view_delete(*, view: SavedView, by=None, token=None, ip: str | None = None) -> None:
    audit_record(org=view.org, verb="saved_view.deleted", target=view, actor=by, token=token, ip=ip,
                 changes={"name": view.name, "query": view.query, "shared": view.shared})
    view.delete()
