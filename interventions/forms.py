"""Console forms for interventions: filters from the URL, and the version an action was taken from."""

from __future__ import annotations

from django import forms

from interventions.models import Intervention
from interventions.selectors import CLOSED, UNRESOLVED


class InterventionFilterForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", required=False, choices=[("", "Any kind"), *Intervention.Kind.choices])
    state = forms.ChoiceField(label="State", required=False, choices=[
        ("", "Any state"), (UNRESOLVED, "Open or acknowledged"), *Intervention.State.choices,
        (CLOSED, "Resolved or dismissed"),
    ])

    def criteria(self) -> dict[str, str]:
        self.is_valid()  # a bad value in the URL is dropped, the others still apply
        return {"kind": self.cleaned_data.get("kind", ""), "state": self.cleaned_data.get("state", "")}


class InterventionActionForm(forms.Form):
    """Every action carries the version the person saw, so a change made meanwhile is not overwritten."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    note = forms.CharField(label="Note", required=False, max_length=2000)
