"""Console forms for organizations: they validate and normalize; services decide."""

from __future__ import annotations

import zoneinfo
from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import SetPasswordMixin
from django.db.models import Q
from django.utils import timezone

from config.bounds import DayField
from config.entries import split_entries
from orgs import windows
from orgs.models import ApiToken, Organization, Role
from orgs.schedules import ScheduleError, parse_crontab
from orgs.scope import ScopeError, parse_networks, parse_scope


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class InvitationForm(forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class InvitationSignupForm(SetPasswordMixin, forms.Form):
    """A new account, only reachable through a valid invitation link: a password, nothing else.

    The account is named by the invited e-mail address (``orgs.services.invitation_signup``): a
    name typed here could be answered "taken", which would tell anyone holding an invitation
    whether a user of any organization has that name.
    """

    password1, password2 = SetPasswordMixin.create_password_fields()

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        data = super().clean()
        self.validate_passwords()
        # The password is judged against the account it will protect (not too close to its name).
        self.validate_password_for_user(get_user_model()(username=self.email, email=self.email))
        return data


class SettingsForm(forms.Form):
    scope_networks = forms.CharField(
        label="Scope networks", required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One CIDR or address per line, e.g. 127.0.10.0/24. Scans stay inside these and the "
                  "deployment's allowed networks.")
    scope_hostnames = forms.CharField(
        label="Scope host names", required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One host name or wildcard per line, e.g. api.lab.internal or *.lab.internal.")
    schedule_crontab = forms.CharField(
        label="Schedule (crontab)", required=False, max_length=100,
        help_text="Five fields: minute hour day-of-month month day-of-week, e.g. 0 3 * * * (daily at 03:00). "
                  "Empty: no recurring scan.")
    schedule_timezone = forms.CharField(label="Timezone", max_length=64, initial="UTC",
                                        help_text="An IANA name such as UTC or Europe/Paris.")
    scan_windows = forms.CharField(
        label="Scan windows", required=False, widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text="When scanning is allowed, in the timezone above: one range a line, e.g. Mon-Fri 20:00-06:00 "
                  "(an end before its start runs past midnight) or Sat-Sun all day. Empty: any time. Sessions "
                  "outside a window wait for it; a window that closes pauses them until it opens again.")
    default_profile = forms.ModelChoiceField(label="Default scan profile", queryset=None, required=False,
                                             empty_label="(the built-in standard profile)")
    max_concurrent_jobs = forms.IntegerField(label="Max concurrent jobs", min_value=1, max_value=10_000)
    node_cooldown_minutes = forms.IntegerField(
        label="Node cooldown (minutes)", min_value=0, max_value=7 * 24 * 60,
        help_text="A node scanned less than this long ago is skipped by the next session.")

    potential_threshold = forms.FloatField(
        label="Certainty threshold", min_value=0, max_value=1,
        widget=forms.NumberInput(attrs={"step": "0.05", "min": "0", "max": "1"}),
        error_messages={"min_value": "Between 0 and 1.", "max_value": "Between 0 and 1.",
                        "invalid": "A number between 0 and 1, e.g. 0.6."},
        help_text="0 to 1. A finding whose match confidence is below this is potential: listed apart, left out "
                  "of grades, scores and top risks until an analyst confirms it. 0 counts every finding.")

    # Days to fix an open finding, per priority (scans.findings.sla); the service checks the same range.
    sla_p1_days = forms.IntegerField(label="SLA for P1 (days)", min_value=1, max_value=3650,
                                     help_text="1 to 3,650 days. Changing an SLA moves the due date of every open finding.")
    sla_p2_days = forms.IntegerField(label="SLA for P2 (days)", min_value=1, max_value=3650)
    sla_p3_days = forms.IntegerField(label="SLA for P3 (days)", min_value=1, max_value=3650)
    sla_p4_days = forms.IntegerField(label="SLA for P4 (days)", min_value=1, max_value=3650,
                                     help_text="Findings without a priority yet follow their severity: critical P1, "
                                               "high P2, medium P3, low and info P4. A CISA KEV due date wins when earlier.")

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        # The scan profiles it may choose, the built-in ones and its own: the model is the one the
        # organization's foreign key names (scans sits above orgs and is not imported here).
        profiles = Organization._meta.get_field("default_profile").related_model.objects
        self.fields["default_profile"].queryset = profiles.filter(Q(org=None) | Q(org=org)).order_by("name")

    @classmethod
    def initial_for(cls, org) -> dict:
        return {
            "scope_networks": "\n".join(org.scope_networks), "scope_hostnames": "\n".join(org.scope_hostnames),
            "schedule_crontab": org.schedule_crontab, "schedule_timezone": org.schedule_timezone,
            "default_profile": org.default_profile_id, "max_concurrent_jobs": org.max_concurrent_jobs,
            "node_cooldown_minutes": org.node_cooldown_minutes, "potential_threshold": org.potential_threshold,
            "scan_windows": windows.to_text(org.scan_windows),
            "sla_p1_days": org.sla_p1_days, "sla_p2_days": org.sla_p2_days, "sla_p3_days": org.sla_p3_days,
            "sla_p4_days": org.sla_p4_days,
        }

    def clean_scan_windows(self) -> list[dict]:
        try:
            return windows.to_json(windows.parse_text(self.cleaned_data["scan_windows"]))
        except windows.WindowError as error:
            raise forms.ValidationError(str(error)) from None

    def clean_scope_networks(self) -> list[str]:
        # The scanners' own parser: what is accepted here is what the scope guard reads.
        networks, errors = [], []
        for entry in split_entries(self.cleaned_data["scope_networks"], separators=",\n"):
            try:
                (network,) = parse_networks([entry])
            except ScopeError as error:
                errors.append(str(error))
                continue
            if str(network) not in networks:
                networks.append(str(network))
        if errors:
            raise forms.ValidationError(errors)
        return networks

    def clean_scope_hostnames(self) -> list[str]:
        names, errors = [], []
        for entry in split_entries(self.cleaned_data["scope_hostnames"], separators=",\n"):
            try:
                scope = parse_scope([entry])
            except ScopeError as error:
                errors.append(str(error))
                continue
            if scope.networks:
                errors.append(f"{entry!r} is a network: put it under scope networks")
                continue
            name = next(iter(scope.hostnames), None) or f"*.{scope.wildcards[0]}"
            if name not in names:
                names.append(name)
        if errors:
            raise forms.ValidationError(errors)
        return names

    def clean_schedule_crontab(self) -> str:
        text = " ".join(self.cleaned_data["schedule_crontab"].split())
        if text:
            try:
                parse_crontab(text)
            except ScheduleError as error:
                raise forms.ValidationError(str(error)) from None
        return text

    def clean_schedule_timezone(self) -> str:
        name = self.cleaned_data["schedule_timezone"].strip()
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(f"unknown timezone {name!r} (use an IANA name such as Europe/Paris)") from None
        return name


class ApiTokenForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="What uses it, e.g. ci-pipeline.")
    access = forms.ChoiceField(label="Access", choices=ApiToken.Access.choices, initial=ApiToken.Access.READ)
    expires_in_days = forms.IntegerField(label="Expires in (days)", required=False, min_value=1, max_value=3650,
                                         initial=90, help_text="Empty: never expires.")

    def expires_at(self):
        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + timedelta(days=days) if days else None


class AuditFilterForm(forms.Form):
    actor = forms.ChoiceField(label="Actor", required=False)
    verb = forms.CharField(label="Verb", required=False, max_length=64,
                           help_text='Exact, or a prefix ending in "." such as finding.')
    since = DayField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = DayField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, members=(), tokens=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actor"].choices = (
            [("", "Anyone")]
            + [(f"user:{m.user_id}", m.user.username) for m in members]
            + [(f"token:{t.pk}", f"token {t.name} ({t.prefix}…)") for t in tokens]
        )


class ZoneWindowsBudgetForm(forms.Form):
    """A zone's own scan windows and budget (the zone's page includes ``orgs/partials/zone_windows_budget_form.html``)."""

    scan_windows = forms.CharField(
        label="Scan windows", required=False, widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text="One range a line, e.g. Mon-Fri 20:00-06:00 or Sat-Sun all day, in the organization's timezone. "
                  "Empty: the organization's windows.")
    max_new_connections_per_second = forms.IntegerField(
        label="New connections per second", required=False,
        widget=forms.NumberInput(attrs={"min": "1", "inputmode": "numeric", "placeholder": "no limit"}),
        help_text="For all the zone's workers together; each node may have a lower budget of its own. Empty: no limit.")

    @classmethod
    def initial_for(cls, zone) -> dict:
        return {"scan_windows": windows.to_text(zone.scan_windows),
                "max_new_connections_per_second": zone.max_new_connections_per_second}

    def clean_scan_windows(self) -> list[dict]:
        try:
            return windows.to_json(windows.parse_text(self.cleaned_data["scan_windows"]))
        except windows.WindowError as error:
            raise forms.ValidationError(str(error)) from None
class ZoneForm(forms.Form):
    """A zone as typed: its networks and names are judged by ``orgs.zones`` (inside the scope, no overlap)."""

    name = forms.CharField(max_length=100)
    networks = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One CIDR per line, each inside the organization's scope, e.g. 10.20.0.0/16. A node belongs to "
                  "the zone whose network holds its address most specifically.")
    hostnames = forms.CharField(
        label="Host names", required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional: names or wildcards (*.branch.example) inside the organization's declared names.")

    @staticmethod
    def initial_for(zone) -> dict:
        return {"name": zone.name, "networks": "\n".join(zone.networks or []),
                "hostnames": "\n".join(zone.hostnames or [])}

    def clean_networks(self):
        return split_entries(self.cleaned_data["networks"], separators=",\n")

    def clean_hostnames(self):
        return split_entries(self.cleaned_data["hostnames"], separators=",\n")
