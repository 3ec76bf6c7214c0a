"""Console forms for nodes: they read and shape input; the services decide (scope, duplicates)."""

from __future__ import annotations

import ipaddress

from django import forms

from nodes.models import DEFAULT_ZONE, GRADES, Node
from nodes.protocols import protocol_names
from nodes.selectors import NODE_SORTS
from nodes.services import BULK_MAX_BYTES, BULK_MAX_ROWS

PAGE_SIZES = (25, 50, 100, 200)


def _protocol_choices():
    return [("", "Any protocol")] + [(name, name) for name in protocol_names()]


class NodeFilterForm(forms.Form):
    """The nodes page's search, filters, sort and page, all from the URL (shareable, back button works)."""

    q = forms.CharField(label="Search", required=False, max_length=255,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Address, name or host name",
                                                      "data-search": ""}))
    grade = forms.ChoiceField(label="Grade", required=False,
                              choices=[("", "Any grade"), *((g, g) for g in GRADES), ("none", "Not scored")])
    protocol = forms.ChoiceField(label="Protocol", required=False, choices=_protocol_choices)
    tag = forms.CharField(label="Tag", required=False, max_length=40)
    state = forms.ChoiceField(label="State", required=False, choices=[("", "Any state"), *Node.State.choices])
    enabled = forms.ChoiceField(label="Enabled", required=False,
                                choices=[("", "Enabled or not"), ("yes", "Enabled"), ("no", "Disabled")])
    zone = forms.ChoiceField(label="Zone", required=False, choices=[])
    sort = forms.CharField(required=False, widget=forms.HiddenInput)
    per = forms.TypedChoiceField(label="Per page", required=False, coerce=int, empty_value=50,
                                 choices=[(n, str(n)) for n in PAGE_SIZES])

    def __init__(self, *args, zones=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["zone"].choices = [("", "Any zone"), (DEFAULT_ZONE, "Default zone"),
                                       *((str(zone.pk), zone.name) for zone in zones)]

    def criteria(self) -> tuple[dict, str, bool, int]:
        """(filters, sort key, descending, page size); a bad value in the URL is ignored, not an error."""
        self.is_valid()  # an invalid field drops out of cleaned_data; the valid ones still apply
        data = self.cleaned_data
        filters = {key: data.get(key) for key in ("q", "grade", "protocol", "tag", "state", "zone")}
        enabled = data.get("enabled")
        filters["enabled"] = {"yes": True, "no": False}.get(enabled or "")
        sort = data.get("sort") or "address"
        descending = sort.startswith("-")
        key = sort.lstrip("-")
        if key not in NODE_SORTS:
            key, descending = "address", False
        return filters, key, descending, data.get("per") or 50


CRITICALITY_HELP = "How much the business depends on it: its findings' priority weighs it."


def _criticality_field() -> forms.ChoiceField:
    # Left out of a form's data: medium for a new node, unchanged for an edited one.
    return forms.ChoiceField(label="Criticality", choices=Node.Criticality.choices, initial=Node.Criticality.MEDIUM,
                             required=False, help_text=CRITICALITY_HELP)


class NodeAddForm(forms.Form):
    address = forms.CharField(label="Address", max_length=255,
                              help_text="An IP address or a host name inside the organization's scope.")
    name = forms.CharField(label="Name", max_length=200, required=False)
    tags = forms.CharField(label="Tags", max_length=1000, required=False, help_text="Separated by commas.")
    criticality = _criticality_field()

    def clean_criticality(self) -> str:
        return self.cleaned_data.get("criticality") or Node.Criticality.MEDIUM


class NodeEditForm(forms.Form):
    address = forms.CharField(label="Address", max_length=255,
                              help_text="Changing it checks the new address against the scope again.")
    name = forms.CharField(label="Name", max_length=200, required=False)
    hostname = forms.CharField(label="Host name (SNI and Host header)", max_length=255, required=False,
                               help_text="For an IP node served under a name; never resolved.")
    tags = forms.CharField(label="Tags", max_length=1000, required=False, help_text="Separated by commas.")
    criticality = _criticality_field()

    def clean_criticality(self) -> str | None:
        return self.cleaned_data.get("criticality") or None  # left out: unchanged

    @classmethod
    def for_node(cls, node: Node) -> NodeEditForm:
        return cls(initial={"address": node.address, "name": node.name, "hostname": node.hostname,
                            "tags": ", ".join(node.tags), "criticality": node.criticality})


class NodeCriticalityForm(forms.Form):
    """Set the criticality of the nodes ticked on the list (or of the one node of its page)."""

    node = forms.TypedMultipleChoiceField(coerce=int, choices=(), widget=forms.MultipleHiddenInput)
    criticality = forms.ChoiceField(label="Criticality", choices=[("", "Choose…"), *Node.Criticality.choices],
                                    help_text=CRITICALITY_HELP)

    def __init__(self, *args, nodes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["node"].choices = [(node.pk, str(node)) for node in nodes]



class NodeBulkForm(forms.Form):
    text = forms.CharField(
        label="Paste addresses", required=False, widget=forms.Textarea(attrs={"rows": 8}),
        help_text="One address per line, optionally followed by a name. Lines starting with # are skipped.",
    )
    file = forms.FileField(
        label="Or upload a CSV file", required=False,
        help_text=f"Columns address, name (optional), tags separated by ; (optional), criticality: low, medium, "
                  f"high or critical (optional, medium when left out); a header row is optional. "
                  f"At most {BULK_MAX_ROWS:,} rows and {BULK_MAX_BYTES // 1000:,} kB.",
    )

    def __init__(self, *args, org=None, **kwargs):
        super().__init__(*args, **kwargs)
        if org is not None and (example := bulk_example_address(org)):
            # An example inside the organization's own scope: one copied as-is is accepted.
            self.fields["text"].help_text = (f"One address per line, optionally followed by a name: {example} web-1. "
                                             "Lines starting with # are skipped.")

    def clean(self):
        data = super().clean()
        if bool((data.get("text") or "").strip()) == bool(data.get("file")):
            raise forms.ValidationError("Paste a list or choose a CSV file (one of the two).")
        upload = data.get("file")
        if upload is not None and upload.size > BULK_MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {BULK_MAX_BYTES:,} bytes; split it.")
        return data


def bulk_example_address(org) -> str:
    """The first host of the organization's first scope network (or its first host name); "" without a scope."""
    for entry in org.scope_networks or ():
        try:
            network = ipaddress.ip_network(str(entry).strip(), strict=False)
        except ValueError:
            continue
        if network.num_addresses <= 2:
            return str(network.network_address)
        return str(next(network.hosts()))
    hostnames = [h for h in org.scope_hostnames or () if h and not str(h).startswith("*")]
    return str(hostnames[0]) if hostnames else ""


class NodeBudgetsForm(forms.Form):
    """What a fragile node tolerates; empty is no limit. The bounds are checked by the service (orgs.budgets)."""

    new_per_second = forms.IntegerField(label="New connections per second", required=False,
                                        widget=forms.NumberInput(attrs={"min": "1", "inputmode": "numeric"}))
    at_once = forms.IntegerField(label="Connections at once", required=False,
                                 widget=forms.NumberInput(attrs={"min": "1", "inputmode": "numeric"}))
