"""The first step every console view of an organization takes, in one place: who may reach it.

A view under ``/o/<slug>/`` needs a logged-in person (anonymous → the login page), answers only
its HTTP methods (else 405) and works on the person's membership of the organization the URL
names, fetched through an access helper of ``orgs.access``: another organization is a 404, a
role that may not do this a 403. ``org_view`` does the three, in that order, and calls the view
with the membership in place of the slug.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from orgs.access import membership_for


def org_view(*methods: str, access=membership_for):
    """``@org_view("POST", access=writable_membership_for)`` over ``def view(request, membership, ...)``.

    ``access`` is the helper the view's role check needs (``membership_for`` for any member,
    ``writable_membership_for``, ``managing_membership_for``), or one per method where a page shows
    to every member and changes for some: ``{"GET": membership_for, "POST": managing_membership_for}``.
    """
    by_method = access if isinstance(access, Mapping) else dict.fromkeys(methods, access)
    if missing := set(methods) - set(by_method):
        raise ImproperlyConfigured(f"org_view: no access helper for {', '.join(sorted(missing))}")

    def decorate(view):
        @wraps(view)
        def with_membership(request, *args, slug, **kwargs):
            return view(request, by_method[request.method](request.user, slug), *args, **kwargs)

        return login_required(require_http_methods(list(methods))(with_membership))

    return decorate


def org_page(template: str, context, *, access=membership_for):
    """A page that only shows: ``template`` rendered with ``context(membership)`` (GET only).

    ``members = org_page("orgs/members.html", _members_context)`` — the view a list page with its
    own context builder needs, written once.
    """

    @org_view("GET", access=access)
    def page(request, membership):
        return render(request, template, context(membership))

    return page
