"""Failed log-ins and lockouts become audit events (django-axes counts and locks; this records).

A failed log-in names no organization (the person is not known yet), so its event has none;
the audit trail of the whole deployment is in the admin.
"""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from orgs.audit import audit_record


def _ip(request) -> str | None:
    if request is None:
        return None
    return getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR") or None


@receiver(user_login_failed, dispatch_uid="watchpost.login_failed")
def record_login_failed(sender, credentials, request=None, **kwargs):
    audit_record(org=None, verb="login.failed", changes={"username": str(credentials.get("username", ""))[:150]},
                 ip=_ip(request))


@receiver(user_locked_out, dispatch_uid="watchpost.login_locked_out")
def record_locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    audit_record(org=None, verb="login.locked_out", changes={"username": str(username or "")[:150]},
                 ip=ip_address or _ip(request))
