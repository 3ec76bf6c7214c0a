"""Console forms of the scans app: starting a session, triaging findings, confirming or dismissing a potential
one. They validate; services decide."""

from __future__ import annotations

from datetime import datetime, time

from django import forms
from django.utils import timezone

from config.bounds import DayField, parse_id
from scans.models import Finding
from scans.selectors import MAX_RULES

SCOPE_ALL, SCOPE_TAG, SCOPE_NODES = "all", "tag", "nodes"


class NodeIdsField(forms.TypedMultipleChoiceField):
    """The ids of the nodes ticked. The choices render the nodes sent; whether an id names a node of
    the organization is for ``scans.selectors.session_targets_for`` to say, as it does for the API."""

    def valid_value(self, value) -> bool:
        return True


class ImportUploadForm(forms.Form):
    """A scanner file from the console: validated here, stored and queued by ``import_request_create``."""

    file = forms.FileField(label="Scanner file", allow_empty_file=False,
                           help_text="nmap XML, Nuclei JSONL, Trivy JSON, SSLyze JSON, OpenVAS XML or CSV, SARIF.")
    format = forms.ChoiceField(label="Format", required=False,
                               help_text="Told from the file's first bytes when left on “Detect”.")
    node = forms.CharField(label="Node", required=False, max_length=255,
                           help_text="The node address for findings that name no host (Trivy image scans, SARIF).")

    def __init__(self, *args, formats, max_bytes: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_bytes = max_bytes
        self.fields["format"].choices = [("", "Detect"), *((f, f) for f in formats)]

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.max_bytes:
            raise forms.ValidationError(f"The file is larger than the limit of {self.max_bytes:,} bytes.")
        return upload


class SessionStartForm(forms.Form):
    profile = forms.ChoiceField(label="Scan profile", help_text="What runs on each node: built-in or your own.")
    scope = forms.ChoiceField(
        label="Scan", widget=forms.RadioSelect,
        choices=[(SCOPE_ALL, "All enabled nodes"), (SCOPE_TAG, "Nodes with a tag"), (SCOPE_NODES, "Selected nodes")],
        initial=SCOPE_ALL,
    )
    tag = forms.ChoiceField(label="Tag", required=False, help_text="Every enabled node carrying this tag.")
    node = NodeIdsField(label="Nodes", required=False, coerce=int, widget=forms.CheckboxSelectMultiple)
    outside_window = forms.BooleanField(
        label="Start now, outside the scan window", required=False,
        help_text="Owners and admins: the session runs at once whatever the windows say (recorded in the audit log).")

    def __init__(self, *args, profiles, tags, nodes, may_override: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not may_override:
            del self.fields["outside_window"]
        self.fields["profile"].choices = [
            (p.slug, f"{p.name} (built-in)" if p.org_id is None else p.name) for p in profiles]
        self.fields["tag"].choices = [("", "—")] + [(t, t) for t in tags]
        self.fields["node"].choices = [(n.pk, str(n) if str(n) == n.address else f"{n} ({n.address})")
                                       for n in nodes]

    def clean(self):
        data = super().clean()
        scope = data.get("scope")
        if scope == SCOPE_TAG and not data.get("tag"):
            self.add_error("tag", "Choose the tag whose nodes to scan.")
        if scope == SCOPE_NODES and not data.get("node"):
            self.add_error("node", "Select at least one node.")
        return data


class TriageForm(forms.Form):
    """One finding, or many: the action, why, until when (accepted risks) and the version read."""

    ACTIONS = [(Finding.Status.FALSE_POSITIVE, "False positive"), (Finding.Status.RISK_ACCEPTED, "Accept risk"),
               (Finding.Status.OPEN, "Reopen")]

    # No initial value: the person presses the button of one action (no default that triages).
    status = forms.ChoiceField(label="Action", choices=ACTIONS,
                               error_messages={"required": "Choose an action.", "invalid_choice": "Choose an action."})
    reason = forms.CharField(label="Reason", required=False, max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Required for a false positive or an accepted risk.")
    until = DayField(label="Accept until", required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            help_text="The risk counts again after this day.")
    version = forms.IntegerField(required=False, min_value=1, max_value=2**31 - 1, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        status, reason, until = data.get("status"), (data.get("reason") or "").strip(), data.get("until")
        if status in (Finding.Status.FALSE_POSITIVE, Finding.Status.RISK_ACCEPTED) and not reason:
            self.add_error("reason", "Say why.")
        if status == Finding.Status.RISK_ACCEPTED:
            if until is None:
                self.add_error("until", "An accepted risk needs an expiry date.")
            elif until <= timezone.localdate():
                self.add_error("until", "Choose a day after today.")
        data["reason"] = reason
        return data

    @property
    def until_datetime(self):
        """The end of the chosen day in the server's timezone (the acceptance lasts the whole day)."""
        if self.cleaned_data.get("status") != Finding.Status.RISK_ACCEPTED or not self.cleaned_data.get("until"):
            return None
        return timezone.make_aware(datetime.combine(self.cleaned_data["until"], time.max))


# What a person may do to a finding in each status (the service refuses reopening an open one;
# an accepted risk may be accepted again with another expiry).
_TRANSITIONS = {
    Finding.Status.OPEN: (Finding.Status.FALSE_POSITIVE, Finding.Status.RISK_ACCEPTED),
    Finding.Status.FIXED: (Finding.Status.FALSE_POSITIVE, Finding.Status.RISK_ACCEPTED),
    Finding.Status.FALSE_POSITIVE: (Finding.Status.RISK_ACCEPTED, Finding.Status.OPEN),
    Finding.Status.RISK_ACCEPTED: (Finding.Status.FALSE_POSITIVE, Finding.Status.RISK_ACCEPTED, Finding.Status.OPEN),
}


def triage_actions_for(status: str) -> list[tuple[str, str]]:
    """The triage actions a finding in ``status`` offers, as (status, label)."""
    allowed = _TRANSITIONS.get(status, ())
    return [(value, label) for value, label in TriageForm.ACTIONS if value in allowed]


class BulkTriageForm(TriageForm):
    """The selected rows (``finding`` ids), or every finding matching ``filter`` (the list's query string)."""

    matching = forms.BooleanField(required=False, label="Every finding matching the filter")
    filter = forms.CharField(required=False, widget=forms.HiddenInput, max_length=4000)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self):
        return _ticked_findings(self, super().clean(), nothing="nothing was triaged")


def _ticked_findings(form: forms.Form, data: dict, *, nothing: str) -> dict:
    """A bulk form's ``finding`` ids (the ticked rows), or none with ``matching`` (every finding of the
    filter). Any ids may be posted: the services read them within the organization only."""
    ids = []
    for value in form.data.getlist("finding") if hasattr(form.data, "getlist") else form.data.get("finding", []):
        finding_id = parse_id(value)
        if finding_id is None:
            raise forms.ValidationError(f"{str(value)[:40]!r} is not a finding id: {nothing}.")
        ids.append(finding_id)
    data["finding"] = ids
    if not data.get("matching") and not ids:
        raise forms.ValidationError("Select findings, or choose every finding matching the filter.")
    return data


class CertaintyForm(forms.Form):
    """Confirm a potential finding, or dismiss it as a false positive (with why)."""

    ACTIONS = [("confirm", "Confirm"), ("dismiss", "Dismiss as a false positive")]

    action = forms.ChoiceField(choices=ACTIONS, error_messages={"required": "Choose confirm or dismiss.",
                                                                "invalid_choice": "Choose confirm or dismiss."})
    reason = forms.CharField(label="Why", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Required to dismiss.")
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        data["reason"] = (data.get("reason") or "").strip()
        if data.get("action") == "dismiss" and not data["reason"]:
            self.add_error("reason", "Say why it is a false positive.")
        return data


# -- ownership: assignee, ticket link, comments (scans.findings.remediation decides) ----------------

COMMENT_HELP = "Plain text; line breaks are kept."


class AssignForm(forms.Form):
    """The member to give the finding to; empty: nobody."""

    assignee = forms.TypedChoiceField(label="Assignee", required=False, coerce=int, empty_value=None,
                                      error_messages={"invalid_choice": "The assignee must be a member of this "
                                                                        "organization."})
    version = forms.IntegerField(required=False, min_value=1, max_value=2**31 - 1, widget=forms.HiddenInput)

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [("", "Nobody")] + list(members)


class TicketForm(forms.Form):
    ticket_url = forms.CharField(label="Ticket link", required=False, max_length=2000,
                                 widget=forms.URLInput(attrs={"placeholder": "https://tracker.example/OPS-1234"}),
                                 help_text="http:// or https:// only. Empty both to unlink.")
    ticket_key = forms.CharField(label="Ticket key", required=False, max_length=100,
                                 widget=forms.TextInput(attrs={"placeholder": "OPS-1234"}))
    version = forms.IntegerField(required=False, min_value=1, max_value=2**31 - 1, widget=forms.HiddenInput)


class CommentForm(forms.Form):
    # The service holds the limit (COMMENT_MAX_CHARS) and says it with the length sent.
    body = forms.CharField(label="Comment", strip=True, widget=forms.Textarea(attrs={"rows": 3, "maxlength": 10000}),
                           help_text=COMMENT_HELP, error_messages={"required": "A comment needs some text."})


class BulkRemediationForm(forms.Form):
    """The bulk bar's ownership actions on the ticked rows, or on every finding matching ``filter``."""

    ACTIONS = [("assign", "Assign"), ("ticket", "Link ticket"), ("comment", "Comment")]

    action = forms.ChoiceField(choices=ACTIONS, error_messages={"required": "Choose an action.",
                                                                "invalid_choice": "Choose an action."})
    assignee = forms.CharField(required=False, max_length=20)
    ticket_url = forms.CharField(required=False, max_length=2000)
    ticket_key = forms.CharField(required=False, max_length=100)
    comment = forms.CharField(required=False)
    matching = forms.BooleanField(required=False)
    filter = forms.CharField(required=False, widget=forms.HiddenInput, max_length=4000)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self):
        return _ticked_findings(self, super().clean(), nothing="nothing was changed")


class GroupTriageForm(TriageForm):
    """The "by vulnerability" groups ticked (``rule`` ids): every open finding of them is triaged, after a confirmation."""

    def clean(self):
        data = super().clean()
        rules = self.data.getlist("rule") if hasattr(self.data, "getlist") else self.data.get("rule", [])
        rules = list(dict.fromkeys(str(r).strip() for r in rules if str(r).strip()))
        if not rules:
            raise forms.ValidationError("Tick the groups to triage.")
        if len(rules) > MAX_RULES:
            raise forms.ValidationError(f"{len(rules)} groups ticked: triage at most {MAX_RULES} at once.")
        if any(len(r) > 255 for r in rules):
            raise forms.ValidationError("A rule id is at most 255 characters: nothing was triaged.")
        data["rule"] = rules
        return data


class SavedViewForm(forms.Form):
    """Save the list's current filter (its query string) under a name, for oneself or the organization."""

    name = forms.CharField(label="Name", max_length=100, error_messages={"required": "Give the view a name."})
    query = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
    shared = forms.BooleanField(label="Share with the organization", required=False)
