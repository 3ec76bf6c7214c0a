"""Console forms of the reports app: they validate and resolve subjects; services decide."""

from __future__ import annotations

from django import forms
from django.http import Http404

from nodes.access import node_for
from nodes.models import Node
from reports.models import Report
from scans.access import session_for


class ReportRequestForm(forms.Form):
    kind = forms.ChoiceField(choices=Report.Kind.choices, initial=Report.Kind.ORGANIZATION, label="Kind")
    format = forms.ChoiceField(choices=Report.Format.choices, initial=Report.Format.PDF, label="Format")
    node = forms.CharField(required=False, max_length=255, label="Node",
                           help_text="For a node report: the node's address or number")
    session = forms.CharField(required=False, max_length=20, label="Session",
                              help_text="For a session report: the session number")

    def __init__(self, *args, membership, **kwargs):
        super().__init__(*args, **kwargs)
        self.membership = membership

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        data["node_obj"] = data["session_obj"] = None
        if kind == Report.Kind.NODE:
            data["node_obj"] = self._node(data.get("node", "").strip())
        elif kind == Report.Kind.SESSION:
            data["session_obj"] = self._session(data.get("session", "").strip())
        return data

    def _node(self, value: str):
        if not value:
            raise forms.ValidationError({"node": "Name the node: its address or number."})
        node = Node.objects.filter(org=self.membership.org, address=value).first()
        if node is None and value.isdigit():
            try:
                node = node_for(self.membership, value)
            except Http404:
                node = None
        if node is None:
            raise forms.ValidationError({"node": f"No node {value!r} in this organization."})
        return node

    def _session(self, value: str):
        value = value.lstrip("#")
        try:
            return session_for(self.membership, value)
        except Http404:
            raise forms.ValidationError({"session": f"No session {value!r} in this organization."}) from None


class ReportScheduleForm(forms.Form):
    enabled = forms.BooleanField(required=False, initial=False, label="Send the report on this schedule")
    crontab = forms.CharField(max_length=100, initial="0 6 * * 1", label="When (crontab)",
                              help_text="minute hour day month weekday: 0 6 * * 1 is Mondays at 06:00")
    timezone = forms.CharField(max_length=64, initial="UTC", label="Time zone")
    format = forms.ChoiceField(choices=Report.Format.choices, initial=Report.Format.PDF, label="Format")
    recipients = forms.ModelMultipleChoiceField(queryset=None, required=False, widget=forms.CheckboxSelectMultiple,
                                                label="E-mail it to")

    def __init__(self, *args, org, **kwargs):
        # Its own element ids: the reports page also shows the request form, whose fields share names
        # (format), and two id_format elements would leave this select without its label.
        kwargs.setdefault("auto_id", "schedule_%s")
        super().__init__(*args, **kwargs)
        from django.contrib.auth import get_user_model

        self.fields["recipients"].queryset = get_user_model().objects.filter(memberships__org=org).order_by("username")
        self.fields["recipients"].label_from_instance = lambda u: f"{u.username} <{u.email}>" if u.email else u.username
