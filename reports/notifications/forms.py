"""The channel form: one for every kind, the console's create (kind chosen) and edit (kind kept)."""

from __future__ import annotations

import re

from django import forms
from django.contrib.auth import get_user_model

from reports.models import WebhookEndpoint
from scans.models import SEVERITIES

Kind = WebhookEndpoint.Kind


class MemberChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, user):
        return f"{user.get_username()} <{user.email}>" if user.email else f"{user.get_username()} (no e-mail)"


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", choices=Kind.choices, initial=Kind.SLACK)
    url = forms.URLField(label="URL", max_length=500, required=False, assume_scheme="https",
                         help_text="The incoming-webhook or workflow URL (not for e-mail). Must lie in the "
                                   "organization's scope and the deployment's allowed networks.")
    description = forms.CharField(label="Name", max_length=200, required=False,
                                  help_text="What receives it, e.g. #secops or the on-call team.")
    email_addresses = forms.CharField(label="E-mail addresses", required=False,
                                      widget=forms.Textarea(attrs={"rows": 2}),
                                      help_text="E-mail only: one per line or separated by commas.")
    email_members = MemberChoiceField(label="Members", required=False, queryset=get_user_model().objects.none(),
                                      widget=forms.CheckboxSelectMultiple)
    email_assignees = forms.BooleanField(label="Also the assignees of the findings an event is about", required=False)
    events = forms.MultipleChoiceField(label="Events", choices=WebhookEndpoint.Event.choices,
                                       widget=forms.CheckboxSelectMultiple,
                                       initial=[WebhookEndpoint.Event.FINDING_CRITICAL])
    min_severity = forms.ChoiceField(label="Minimum severity for \u201cNew findings\u201d", initial="high",
                                     choices=[(s, s.capitalize()) for s in SEVERITIES])

    def __init__(self, *args, org, kind: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email_members"].queryset = (get_user_model().objects.filter(memberships__org=org)
                                                 .order_by("username"))
        if kind is not None:  # editing: the kind is the channel's
            del self.fields["kind"]
            self.fixed_kind = kind
        else:
            self.fixed_kind = None

    def clean_email_addresses(self) -> list[str]:
        return [a for a in re.split(r"[\s,;]+", self.cleaned_data.get("email_addresses") or "") if a]

    def clean(self):
        cleaned = super().clean()
        kind = self.fixed_kind or cleaned.get("kind")
        if kind and kind != Kind.EMAIL and not cleaned.get("url") and "url" not in self.errors:
            self.add_error("url", "A URL is needed for this kind of channel.")
        cleaned["kind"] = kind
        return cleaned

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {"url": data.get("url") or "", "description": data["description"], "events": data["events"],
                "min_severity": data["min_severity"], "email_addresses": data["email_addresses"],
                "email_members": list(data["email_members"]), "email_assignees": data["email_assignees"]}

    @staticmethod
    def initial_for(endpoint: WebhookEndpoint) -> dict:
        return {"url": endpoint.url, "description": endpoint.description, "events": endpoint.events,
                "min_severity": endpoint.min_severity, "email_addresses": "\n".join(endpoint.email_addresses),
                "email_members": list(endpoint.email_members.all()), "email_assignees": endpoint.email_assignees}


class DigestForm(forms.Form):
    enabled = forms.BooleanField(label="Send me the daily digest", required=False)
